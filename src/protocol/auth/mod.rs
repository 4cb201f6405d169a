//! HTTP-style authentication as RTSP cameras use it (RFC 2617): reading a
//! `WWW-Authenticate` challenge and answering it with Basic or Digest (MD5,
//! with or without `qop=auth`). Sans I/O: the client nonce comes in as an
//! argument. The password is only ever hashed or encoded here; the
//! `Authorization` value it produces must not be logged as it stands.
//! The server's side, checking what a client sends, is [`server`].

pub mod server;

/// A challenge from a 401 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: String,
    },
    Digest {
        realm: String,
        nonce: String,
        opaque: Option<String>,
        /// The server offered `qop=auth`.
        qop_auth: bool,
    },
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the server asks for authentication we do not speak: {0:?}")]
    Unsupported(String),
    #[error("the Digest challenge has no nonce")]
    NoNonce,
}

/// Pick the challenge to answer from every `WWW-Authenticate` value of a
/// reply: Digest when offered (it never sends the password), else Basic.
pub fn choose(values: &[&str]) -> Result<Challenge, AuthError> {
    let mut basic = None;
    let mut other = None;
    for v in values {
        let v = v.trim();
        let (scheme, params) = v.split_once(' ').unwrap_or((v, ""));
        let p = params_of(params);
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("Digest") {
            let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
            if !algorithm.eq_ignore_ascii_case("MD5") {
                other = Some(format!("Digest algorithm={algorithm}"));
                continue;
            }
            let nonce = get("nonce").ok_or(AuthError::NoNonce)?;
            let qop_auth = get("qop")
                .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")));
            return Ok(Challenge::Digest {
                realm: get("realm").unwrap_or_default(),
                nonce,
                opaque: get("opaque"),
                qop_auth,
            });
        } else if scheme.eq_ignore_ascii_case("Basic") {
            basic = Some(Challenge::Basic {
                realm: get("realm").unwrap_or_default(),
            });
        } else {
            other = Some(scheme.to_string());
        }
    }
    basic.ok_or_else(|| AuthError::Unsupported(other.unwrap_or_default()))
}

/// `name=value` and `name="quoted, value"` pairs of a challenge.
pub(crate) fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let name = s[start..i].trim().to_string();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            // Bytes, then text: a realm or nonce beyond ASCII stays as the
            // server wrote it (it goes into the hash as it is).
            let mut v = Vec::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                v.push(b[i]);
                i += 1;
            }
            i += 1;
            String::from_utf8_lossy(&v).into_owned()
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            s[start..i].trim().to_string()
        };
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// What answering needs besides the challenge.
pub struct Answer<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    /// Requests answered with this nonce so far, counting this one.
    pub nonce_count: u32,
    /// A fresh random client nonce (used with `qop=auth`).
    pub cnonce: &'a str,
}

/// The `Authorization` header value answering `challenge`.
pub fn authorization(challenge: &Challenge, a: &Answer<'_>) -> String {
    match challenge {
        Challenge::Basic { .. } => {
            format!(
                "Basic {}",
                base64(format!("{}:{}", a.user, a.password).as_bytes())
            )
        }
        Challenge::Digest {
            realm,
            nonce,
            opaque,
            qop_auth,
        } => {
            let ha1 = md5_hex(format!("{}:{realm}:{}", a.user, a.password).as_bytes());
            let ha2 = md5_hex(format!("{}:{}", a.method, a.uri).as_bytes());
            let nc = format!("{:08x}", a.nonce_count);
            let response = if *qop_auth {
                md5_hex(format!("{ha1}:{nonce}:{nc}:{}:auth:{ha2}", a.cnonce).as_bytes())
            } else {
                md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
            };
            // Whatever the server put in its challenge goes back as a
            // quoted string, escaped, so that it cannot end the field early.
            let mut v = format!(
                "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\"",
                quoted(a.user),
                quoted(realm),
                quoted(nonce),
                quoted(a.uri)
            );
            if let Some(o) = opaque {
                v.push_str(&format!(", opaque={}", quoted(o)));
            }
            if *qop_auth {
                v.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quoted(a.cnonce)));
            }
            v
        }
    }
}

/// `s` as an RFC 2616 quoted-string: in quotes, with `\\` and `"` escaped
/// (the challenge reader takes the escapes out again).
pub fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// MD5 (RFC 1321), as hex: Digest authentication needs nothing stronger,
/// and nothing else here needs MD5 at all.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {

    /// A server's nonce with quotes in it goes back escaped, so the field
    /// ends where it should (found by fuzzing).
    /// The answer the tests below ask for.
    fn alice() -> Answer<'static> {
        Answer {
            user: "alice",
            password: "secret",
            method: "DESCRIBE",
            uri: "rtsp://h/x",
            nonce_count: 1,
            cnonce: "c",
        }
    }

    /// Found by fuzzing (auth): a nonce holding the text `qop=auth`, and a
    /// realm beyond ASCII, which was read byte by byte as Latin-1 and so
    /// hashed as other characters than the server's.
    #[test]
    fn a_realm_beyond_ascii_and_a_nonce_that_looks_like_qop() {
        let challenge = choose(&["Digest realm=\"caméra\", nonce=\"n qop=auth\""]).unwrap();
        let Challenge::Digest {
            realm,
            nonce,
            qop_auth,
            ..
        } = &challenge
        else {
            panic!("{challenge:?}");
        };
        assert_eq!(realm, "caméra");
        assert_eq!(nonce, "n qop=auth");
        assert!(!qop_auth);
        let a = alice();
        let v = authorization(&challenge, &a);
        let params = params_of(&v["Digest ".len()..]);
        assert!(params.contains(&("realm".to_string(), "caméra".to_string())));
        assert!(!params.iter().any(|(k, _)| k == "qop"), "{v}");
    }

    #[test]
    fn quoted_values_are_escaped() {
        assert_eq!(quoted("plain"), "\"plain\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let challenge = Challenge::Digest {
            realm: "r".into(),
            nonce: "response=\"abc\"".into(),
            opaque: None,
            qop_auth: false,
        };
        let a = alice();
        let v = authorization(&challenge, &a);
        assert!(v.contains("nonce=\"response=\\\"abc\\\"\""), "{v}");
        // Read back as a challenge would be, the nonce is the server's.
        let params = params_of(&v["Digest ".len()..]);
        assert!(
            params.contains(&("nonce".to_string(), "response=\"abc\"".to_string())),
            "{params:?}"
        );
    }

    use super::*;

    #[test]
    fn md5_test_suite() {
        // RFC 1321 appendix A.5.
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn rfc2617_digest_example() {
        let c = choose(&[
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        ])
        .unwrap();
        let v = authorization(
            &c,
            &Answer {
                user: "Mufasa",
                password: "Circle Of Life",
                method: "GET",
                uri: "/dir/index.html",
                nonce_count: 1,
                cnonce: "0a4f113b",
            },
        );
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(v.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""));
    }

    #[test]
    fn digest_preferred_basic_otherwise() {
        let both = ["Basic realm=\"cam\"", "Digest realm=\"cam\", nonce=\"n1\""];
        assert!(matches!(
            choose(&both),
            Ok(Challenge::Digest {
                qop_auth: false,
                ..
            })
        ));
        let basic = choose(&["Basic realm=\"cam\""]).unwrap();
        let v = authorization(
            &basic,
            &Answer {
                user: "Aladdin",
                password: "open sesame",
                method: "DESCRIBE",
                uri: "rtsp://h/x",
                nonce_count: 1,
                cnonce: "",
            },
        );
        assert_eq!(v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(matches!(
            choose(&["Bearer x"]),
            Err(AuthError::Unsupported(_))
        ));
        assert_eq!(choose(&["Digest realm=\"r\""]), Err(AuthError::NoNonce));
    }
}
