//! The server's side of RFC 2617 as RTSP uses it: who may watch, the
//! `WWW-Authenticate` challenges of a 401 (Digest and Basic both, so that
//! every client finds one it speaks), checking an `Authorization` header,
//! nonces that expire, and a penalty for addresses that keep guessing.
//!
//! Sans I/O: the time comes in as an argument (seconds on any steady
//! clock, for nonces; an [`Instant`] for penalties) and the secret that
//! signs nonces comes from the caller. Passwords are never kept: each user
//! is held as RFC 2617's HA1, `MD5(user:realm:password)`, which is what
//! both schemes can be checked against, and nothing here formats a secret
//! into an error or a `Debug` line.
//!
//! A nonce is `TIME-MAC`: the time it was made (hex seconds) and
//! `MD5(TIME:secret)`, as RFC 2617 section 3.2.1 suggests, so the server
//! keeps no table of nonces and can tell a stale one (answered with
//! `stale=TRUE`: the client retries with the new nonce and no user is
//! asked again) from a forged one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{md5_hex, params_of, quoted};

/// How long a nonce may be answered (RFC 2617 leaves it to the server).
pub const NONCE_LIFETIME_SECS: u64 = 300;
/// The first refusal of an address is not slowed; each one after it waits
/// twice as long as the last, up to [`MAX_PENALTY`].
pub const FIRST_PENALTY: Duration = Duration::from_millis(250);
pub const MAX_PENALTY: Duration = Duration::from_secs(8);
/// An address that has not failed for this long starts afresh.
pub const PENALTY_MEMORY: Duration = Duration::from_secs(60);
/// Addresses remembered at once: a flood of addresses cannot grow the map.
pub const MAX_REMEMBERED: usize = 4096;

/// Why a users file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersError {
    #[error(
        "line {line}: expected NAME:PASSWORD, or NAME:REALM:HA1 as htdigest writes it (the password is not shown)"
    )]
    Line { line: usize },
    #[error("line {line}: the user name {name:?} is there twice")]
    Twice { line: usize, name: String },
    #[error("line {line}: {name:?} is for realm {found:?}, and this server's realm is {realm:?}")]
    OtherRealm {
        line: usize,
        name: String,
        found: String,
        realm: String,
    },
    #[error("the password file is empty: it should hold the password on its first line")]
    NoPassword,
    #[error("no users: the file holds no NAME:PASSWORD line")]
    NoUsers,
}

/// Who may watch, in one realm.
#[derive(Clone, PartialEq, Eq)]
pub struct Users {
    realm: String,
    /// Name and HA1 (lower-case hex).
    ha1: Vec<(String, String)>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.ha1.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Users")
            .field("realm", &self.realm)
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl Users {
    /// One user whose password is the first line of a password file (the
    /// line's end and trailing `\r` are not part of it).
    pub fn single(realm: &str, name: &str, password_file: &str) -> Result<Users, UsersError> {
        let password = password_file
            .lines()
            .next()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|p| !p.is_empty())
            .ok_or(UsersError::NoPassword)?;
        Ok(Users {
            realm: realm.to_string(),
            ha1: vec![(name.to_string(), ha1(name, realm, password))],
        })
    }

    /// A file of users, a line each: `NAME:PASSWORD`, or `NAME:REALM:HA1`
    /// as Apache's htdigest writes it (then the password itself is nowhere
    /// on disk). Blank lines and lines starting with `#` are skipped.
    pub fn parse(realm: &str, text: &str) -> Result<Users, UsersError> {
        let mut ha1s: Vec<(String, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let (name, rest) = l.split_once(':').ok_or(UsersError::Line { line })?;
            if name.is_empty() || rest.is_empty() {
                return Err(UsersError::Line { line });
            }
            let entry = match rest.rsplit_once(':') {
                Some((r, h)) if h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    if r != realm {
                        return Err(UsersError::OtherRealm {
                            line,
                            name: name.to_string(),
                            found: r.to_string(),
                            realm: realm.to_string(),
                        });
                    }
                    h.to_ascii_lowercase()
                }
                _ => ha1(name, realm, rest),
            };
            if ha1s.iter().any(|(n, _)| n == name) {
                return Err(UsersError::Twice {
                    line,
                    name: name.to_string(),
                });
            }
            ha1s.push((name.to_string(), entry));
        }
        if ha1s.is_empty() {
            return Err(UsersError::NoUsers);
        }
        Ok(Users {
            realm: realm.to_string(),
            ha1: ha1s,
        })
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn ha1_of(&self, name: &str) -> Option<&str> {
        self.ha1
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, h)| h.as_str())
    }
}

fn ha1(name: &str, realm: &str, password: &str) -> String {
    md5_hex(format!("{name}:{realm}:{password}").as_bytes())
}

/// What a request's credentials come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through: the credentials are right.
    Allowed { user: String },
    /// Answer 401 with these `WWW-Authenticate` values.
    Refused {
        challenges: Vec<String>,
        why: Refusal,
    },
}

/// Why a request was refused, for the log (never holding a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no credentials")]
    Missing,
    #[error("a stale nonce (the client retries with the new one)")]
    Stale,
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong password for {0:?}")]
    WrongPassword(String),
    #[error("a nonce this server did not make")]
    ForgedNonce,
    #[error("credentials in a form this server does not read")]
    Malformed,
}

impl Refusal {
    /// Whether this refusal counts against the address: a client that has
    /// not tried yet, or whose nonce merely aged, has guessed nothing.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Refusal::Missing | Refusal::Stale)
    }
}

/// The gate: users, the nonce secret, and the addresses that failed.
pub struct Guard {
    users: Users,
    secret: [u8; 16],
    failures: HashMap<IpAddr, Penalty>,
}

#[derive(Debug, Clone, Copy)]
struct Penalty {
    count: u32,
    last: Instant,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("users", &self.users)
            .field("addresses_failing", &self.failures.len())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// `secret`: random bytes that sign this server's nonces.
    pub fn new(users: Users, secret: [u8; 16]) -> Guard {
        Guard {
            users,
            secret,
            failures: HashMap::new(),
        }
    }

    pub fn realm(&self) -> &str {
        self.users.realm()
    }

    /// The `WWW-Authenticate` values of a 401 made at `now_secs`: Digest
    /// first (clients take the first they speak, and Digest never sends
    /// the password), then Basic.
    pub fn challenges(&self, now_secs: u64, stale: bool) -> Vec<String> {
        let realm = quoted(self.realm());
        let mut digest = format!(
            "Digest realm={realm}, nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.nonce(now_secs)
        );
        if stale {
            digest.push_str(", stale=TRUE");
        }
        vec![digest, format!("Basic realm={realm}")]
    }

    fn nonce(&self, secs: u64) -> String {
        format!("{secs:x}-{}", self.mac(secs))
    }

    fn mac(&self, secs: u64) -> String {
        let mut input = format!("{secs:x}:").into_bytes();
        input.extend_from_slice(&self.secret);
        md5_hex(&input)
    }

    /// Check a request's `Authorization` value (None: it had none) for
    /// `method` at `now_secs`.
    pub fn check(&self, method: &str, authorization: Option<&str>, now_secs: u64) -> Verdict {
        let refuse = |why: Refusal| Verdict::Refused {
            challenges: self.challenges(now_secs, why == Refusal::Stale),
            why,
        };
        let Some(value) = authorization.map(str::trim) else {
            return refuse(Refusal::Missing);
        };
        let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
        let outcome = if scheme.eq_ignore_ascii_case("Basic") {
            self.basic(params.trim())
        } else if scheme.eq_ignore_ascii_case("Digest") {
            self.digest(method, params, now_secs)
        } else {
            Err(Refusal::Malformed)
        };
        match outcome {
            Ok(user) => Verdict::Allowed { user },
            Err(why) => refuse(why),
        }
    }

    fn basic(&self, token: &str) -> Result<String, Refusal> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| Refusal::Malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| Refusal::Malformed)?;
        let (name, password) = text.split_once(':').ok_or(Refusal::Malformed)?;
        let known = self
            .users
            .ha1_of(name)
            .ok_or_else(|| Refusal::UnknownUser(name.to_string()))?;
        let given = ha1(name, self.realm(), password);
        if same(known.as_bytes(), given.as_bytes()) {
            Ok(name.to_string())
        } else {
            Err(Refusal::WrongPassword(name.to_string()))
        }
    }

    fn digest(&self, method: &str, params: &str, now_secs: u64) -> Result<String, Refusal> {
        let p = params_of(params);
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(name), Some(nonce), Some(uri), Some(response)) =
            (get("username"), get("nonce"), get("uri"), get("response"))
        else {
            return Err(Refusal::Malformed);
        };
        if get("realm").is_some_and(|r| r != self.realm()) {
            return Err(Refusal::Malformed);
        }
        // The nonce first: a forged one says nothing of the password.
        let (time, mac) = nonce.split_once('-').ok_or(Refusal::ForgedNonce)?;
        let made = u64::from_str_radix(time, 16).map_err(|_| Refusal::ForgedNonce)?;
        if !same(mac.as_bytes(), self.mac(made).as_bytes()) {
            return Err(Refusal::ForgedNonce);
        }
        let known = self
            .users
            .ha1_of(name)
            .ok_or_else(|| Refusal::UnknownUser(name.to_string()))?;
        let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
        let expected = match get("qop") {
            None => md5_hex(format!("{known}:{nonce}:{ha2}").as_bytes()),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Err(Refusal::Malformed);
                };
                md5_hex(format!("{known}:{nonce}:{nc}:{cnonce}:{q}:{ha2}").as_bytes())
            }
            Some(_) => return Err(Refusal::Malformed),
        };
        if !same(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(Refusal::WrongPassword(name.to_string()));
        }
        // Right, but late: the client answers the fresh nonce by itself.
        if now_secs.saturating_sub(made) > NONCE_LIFETIME_SECS || made > now_secs + 1 {
            return Err(Refusal::Stale);
        }
        Ok(name.to_string())
    }

    /// Note a refusal of `from` at `now`; returns how long to hold the 401
    /// back (zero for a refusal that is not a failure).
    pub fn refused(&mut self, from: IpAddr, why: &Refusal, now: Instant) -> Duration {
        if !why.is_failure() {
            return Duration::ZERO;
        }
        self.forget_old(now);
        let p = self.failures.entry(from).or_insert(Penalty {
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(p.last) > PENALTY_MEMORY {
            p.count = 0;
        }
        p.count = p.count.saturating_add(1);
        p.last = now;
        penalty(p.count)
    }

    /// A success clears the address's failures.
    pub fn allowed(&mut self, from: IpAddr) {
        self.failures.remove(&from);
    }

    /// Addresses with failures remembered (for tests and the log).
    pub fn failing(&self) -> usize {
        self.failures.len()
    }

    fn forget_old(&mut self, now: Instant) {
        if self.failures.len() < MAX_REMEMBERED {
            return;
        }
        self.failures
            .retain(|_, p| now.saturating_duration_since(p.last) <= PENALTY_MEMORY);
        // Still full: a flood of fresh addresses; drop the oldest half.
        if self.failures.len() >= MAX_REMEMBERED {
            let mut lasts: Vec<Instant> = self.failures.values().map(|p| p.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.failures.retain(|_, p| p.last > cut);
        }
    }
}

/// The wait before answering an address's `count`-th failure in a row.
fn penalty(count: u32) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    FIRST_PENALTY
        .saturating_mul(1 << (count - 2).min(16))
        .min(MAX_PENALTY)
}

/// Equal in time independent of where the bytes differ, so that a
/// response cannot be guessed byte by byte from how fast it is refused.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::auth::{Answer, authorization, choose};

    const REALM: &str = "Streamlab";

    fn guard() -> Guard {
        let users = Users::parse(REALM, "alice:wonderland\n# a comment\n\nbob:builder\n").unwrap();
        Guard::new(users, *b"0123456789abcdef")
    }

    /// What our own client sends for `user`/`password` to a 401 of `g`.
    fn answer(g: &Guard, now: u64, user: &str, password: &str, basic: bool) -> String {
        let challenges = g.challenges(now, false);
        let values: Vec<&str> = challenges
            .iter()
            .map(String::as_str)
            .filter(|c| !basic || c.starts_with("Basic"))
            .collect();
        let challenge = choose(&values).unwrap();
        authorization(
            &challenge,
            &Answer {
                user,
                password,
                method: "DESCRIBE",
                uri: "rtsp://127.0.0.1:8554/movie.Mjpeg",
                nonce_count: 1,
                cnonce: "0a4f113b",
            },
        )
    }

    #[test]
    fn digest_and_basic_with_the_right_password_pass() {
        let g = guard();
        for basic in [false, true] {
            let a = answer(&g, 1000, "alice", "wonderland", basic);
            assert_eq!(
                g.check("DESCRIBE", Some(&a), 1000),
                Verdict::Allowed {
                    user: "alice".into()
                },
                "{a}"
            );
        }
    }

    #[test]
    fn a_wrong_password_or_user_is_refused_and_says_which() {
        let g = guard();
        for basic in [false, true] {
            let a = answer(&g, 1000, "alice", "looking-glass", basic);
            let Verdict::Refused { why, challenges } = g.check("DESCRIBE", Some(&a), 1000) else {
                panic!("let through: {a}");
            };
            assert_eq!(why, Refusal::WrongPassword("alice".into()));
            assert!(why.is_failure());
            assert!(challenges[0].starts_with("Digest realm=\"Streamlab\""));
            assert!(challenges[1].starts_with("Basic realm=\"Streamlab\""));
            let a = answer(&g, 1000, "mallory", "x", basic);
            assert!(matches!(
                g.check("DESCRIBE", Some(&a), 1000),
                Verdict::Refused {
                    why: Refusal::UnknownUser(_),
                    ..
                }
            ));
        }
        // The method is in the hash: a DESCRIBE answer does not open PLAY.
        let a = answer(&g, 1000, "alice", "wonderland", false);
        assert!(matches!(
            g.check("PLAY", Some(&a), 1000),
            Verdict::Refused { .. }
        ));
    }

    #[test]
    fn no_credentials_get_both_challenges_and_count_as_no_failure() {
        let g = guard();
        let Verdict::Refused { why, challenges } = g.check("OPTIONS", None, 5) else {
            panic!()
        };
        assert_eq!(why, Refusal::Missing);
        assert!(!why.is_failure());
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].contains("qop=\"auth\""));
        assert!(!challenges[0].contains("stale"));
    }

    #[test]
    fn an_old_nonce_is_stale_and_a_forged_one_is_refused() {
        let g = guard();
        let a = answer(&g, 1000, "alice", "wonderland", false);
        let later = 1000 + NONCE_LIFETIME_SECS + 1;
        let Verdict::Refused { why, challenges } = g.check("DESCRIBE", Some(&a), later) else {
            panic!()
        };
        assert_eq!(why, Refusal::Stale);
        assert!(challenges[0].ends_with("stale=TRUE"), "{}", challenges[0]);
        // Another server's nonce (another secret) is forged here.
        let other = Guard::new(Users::parse(REALM, "alice:wonderland").unwrap(), [7; 16]);
        let a = answer(&other, 1000, "alice", "wonderland", false);
        assert!(matches!(
            g.check("DESCRIBE", Some(&a), 1000),
            Verdict::Refused {
                why: Refusal::ForgedNonce,
                ..
            }
        ));
    }

    #[test]
    fn digest_without_qop_as_older_clients_send_it() {
        // RFC 2617 section 3.5's shape without qop (RFC 2069 style).
        let g = guard();
        let nonce = g.nonce(42);
        let ha1 = md5_hex(b"bob:Streamlab:builder");
        let ha2 = md5_hex(b"SETUP:rtsp://h/x/trackID=0");
        let response = md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes());
        let a = format!(
            "Digest username=\"bob\", realm=\"Streamlab\", nonce=\"{nonce}\", uri=\"rtsp://h/x/trackID=0\", response=\"{response}\""
        );
        assert_eq!(
            g.check("SETUP", Some(&a), 42),
            Verdict::Allowed { user: "bob".into() }
        );
    }

    #[test]
    fn garbage_credentials_are_malformed_not_a_panic() {
        let g = guard();
        for a in [
            "",
            "Basic",
            "Basic !!!",
            "Basic bm9jb2xvbg==",
            "Digest",
            "Digest username=\"alice\"",
            "Digest username=\"alice\", nonce=\"zz-zz\", uri=\"u\", response=\"r\"",
            "Bearer abc",
            "Digest username=\"alice\", realm=\"Other\", nonce=\"1-2\", uri=\"u\", response=\"r\"",
        ] {
            let v = g.check("DESCRIBE", Some(a), 10);
            assert!(matches!(v, Verdict::Refused { .. }), "{a}: {v:?}");
        }
    }

    #[test]
    fn users_files_in_both_forms_and_their_mistakes() {
        let ha1 = md5_hex(b"carol:Streamlab:secret");
        let u = Users::parse(REALM, &format!("carol:Streamlab:{ha1}\r\ndave:pa:ss\n")).unwrap();
        assert_eq!(u.ha1_of("carol"), Some(ha1.as_str()));
        // A password may hold a colon.
        assert_eq!(
            u.ha1_of("dave"),
            Some(md5_hex(b"dave:Streamlab:pa:ss").as_str())
        );
        assert_eq!(
            Users::parse(REALM, "carol\n"),
            Err(UsersError::Line { line: 1 })
        );
        assert!(matches!(
            Users::parse(REALM, &format!("carol:Elsewhere:{ha1}")),
            Err(UsersError::OtherRealm { line: 1, .. })
        ));
        assert!(matches!(
            Users::parse(REALM, "a:1\na:2"),
            Err(UsersError::Twice { line: 2, .. })
        ));
        assert_eq!(Users::parse(REALM, "# none\n"), Err(UsersError::NoUsers));
        let one = Users::single(REALM, "eve", "apple\r\nignored\n").unwrap();
        assert_eq!(
            one.ha1_of("eve"),
            Some(md5_hex(b"eve:Streamlab:apple").as_str())
        );
        assert_eq!(
            Users::single(REALM, "eve", "\n"),
            Err(UsersError::NoPassword)
        );
    }

    #[test]
    fn no_secret_in_debug_or_errors() {
        let g = guard();
        let shown = format!("{g:?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("wonderland"));
        assert!(!shown.contains(&md5_hex(b"alice:Streamlab:wonderland")));
        let e = Users::parse(REALM, "frank").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn failures_slow_an_address_down_and_success_clears_them() {
        let mut g = guard();
        let ip: IpAddr = [127, 0, 0, 9].into();
        let other: IpAddr = [127, 0, 0, 10].into();
        let t = Instant::now();
        let wrong = Refusal::WrongPassword("alice".into());
        let waits: Vec<Duration> = (0..8).map(|_| g.refused(ip, &wrong, t)).collect();
        assert_eq!(waits[0], Duration::ZERO, "one typo is not slowed");
        assert_eq!(waits[1], FIRST_PENALTY);
        assert_eq!(waits[2], FIRST_PENALTY * 2);
        assert_eq!(*waits.last().unwrap(), MAX_PENALTY);
        assert_eq!(g.refused(other, &wrong, t), Duration::ZERO, "per address");
        assert_eq!(g.refused(ip, &Refusal::Missing, t), Duration::ZERO);
        g.allowed(ip);
        assert_eq!(g.refused(ip, &wrong, t), Duration::ZERO);
        // Long after, an address starts afresh.
        g.refused(ip, &wrong, t);
        let later = t + PENALTY_MEMORY + Duration::from_secs(1);
        assert_eq!(g.refused(ip, &wrong, later), Duration::ZERO);
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_map_bounded() {
        let mut g = guard();
        let t = Instant::now();
        let wrong = Refusal::WrongPassword("x".into());
        for i in 0..(3 * MAX_REMEMBERED as u32) {
            let ip: IpAddr = std::net::Ipv6Addr::from(u128::from(i)).into();
            g.refused(ip, &wrong, t + Duration::from_millis(u64::from(i)));
        }
        assert!(g.failing() <= MAX_REMEMBERED, "{}", g.failing());
    }
}
