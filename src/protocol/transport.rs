//! The RTSP Transport header (RFC 2326 section 12.39), read leniently: the
//! lab writes `RTP/UDP; client_port= 25000` (a space after `=`, one port, a
//! protocol name no RFC defines) and real clients write
//! `RTP/AVP;unicast;client_port=5000-5001` or `RTP/AVP/TCP;interleaved=0-1`.

/// How RTP travels under a transport spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    Udp,
    Tcp,
}

/// One transport spec from a Transport header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// The protocol as written, e.g. `RTP/AVP`, `RTP/UDP`, `RTP/AVP/TCP`.
    pub protocol: String,
    pub lower: Lower,
    pub multicast: bool,
    /// RTP port and, when given, the RTCP port.
    pub client_port: Option<(u16, Option<u16>)>,
    pub server_port: Option<(u16, Option<u16>)>,
    pub interleaved: Option<(u8, Option<u8>)>,
    pub ssrc: Option<u32>,
}

/// Why a Transport header could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("Transport header is empty")]
    Empty,
    #[error("Transport protocol {0:?} is not RTP")]
    NotRtp(String),
    #[error("Transport parameter {name} has a bad value {value:?}")]
    BadValue { name: String, value: String },
}

fn parse_range<T: std::str::FromStr>(
    name: &str,
    v: &str,
) -> Result<(T, Option<T>), TransportError> {
    let bad = || TransportError::BadValue {
        name: name.to_string(),
        value: v.to_string(),
    };
    let mut parts = v.splitn(2, '-');
    let a = parts
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let b = match parts.next() {
        Some(b) => Some(b.trim().parse().map_err(|_| bad())?),
        None => None,
    };
    Ok((a, b))
}

impl Transport {
    /// Parse every comma-separated spec of a Transport header, in order.
    pub fn parse_all(header: &str) -> Vec<Result<Transport, TransportError>> {
        header.split(',').map(Transport::parse).collect()
    }

    /// Parse one transport spec.
    pub fn parse(spec: &str) -> Result<Transport, TransportError> {
        let mut params = spec.split(';').map(str::trim);
        let protocol = params.next().unwrap_or("").to_string();
        if protocol.is_empty() {
            return Err(TransportError::Empty);
        }
        let upper = protocol.to_ascii_uppercase();
        if !upper.starts_with("RTP/") {
            return Err(TransportError::NotRtp(protocol));
        }
        let lower = if upper.ends_with("/TCP") {
            Lower::Tcp
        } else {
            Lower::Udp
        };
        let mut t = Transport {
            protocol,
            lower,
            multicast: false,
            client_port: None,
            server_port: None,
            interleaved: None,
            ssrc: None,
        };
        for p in params {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim()),
                None => (p.to_ascii_lowercase(), ""),
            };
            match name.as_str() {
                "multicast" => t.multicast = true,
                "client_port" => t.client_port = Some(parse_range(&name, value)?),
                "server_port" => t.server_port = Some(parse_range(&name, value)?),
                "interleaved" => t.interleaved = Some(parse_range(&name, value)?),
                "ssrc" => {
                    t.ssrc = Some(u32::from_str_radix(value, 16).map_err(|_| {
                        TransportError::BadValue {
                            name: name.clone(),
                            value: value.to_string(),
                        }
                    })?)
                }
                _ => {}
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_transport_with_space_after_equals() {
        let t = Transport::parse("RTP/UDP; client_port= 25000").unwrap();
        assert_eq!(t.lower, Lower::Udp);
        assert_eq!(t.client_port, Some((25000, None)));
    }

    #[test]
    fn standard_udp_and_tcp() {
        let t = Transport::parse("RTP/AVP;unicast;client_port=5000-5001").unwrap();
        assert_eq!(t.client_port, Some((5000, Some(5001))));
        let t = Transport::parse("RTP/AVP/TCP;unicast;interleaved=0-1").unwrap();
        assert_eq!(t.lower, Lower::Tcp);
        assert_eq!(t.interleaved, Some((0, Some(1))));
        let t = Transport::parse("RTP/AVP;unicast;server_port=6000-6001;ssrc=1A2B3C4D").unwrap();
        assert_eq!(t.ssrc, Some(0x1A2B3C4D));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Transport::parse("").is_err());
        assert!(Transport::parse("HTTP/1.1").is_err());
        assert!(Transport::parse("RTP/AVP;client_port=abc").is_err());
        assert!(Transport::parse("RTP/AVP;client_port=70000").is_err());
    }
}
