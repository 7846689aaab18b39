//! The local users file: who may log in with which password, and what they get.
//!
//! Format: UTF-8 text, one user per line, fields separated by spaces or tabs:
//!
//! ```text
//! # comment (a `#` outside quotes starts a comment to the end of the line)
//! user1        pw1
//! alice        "pass word"   address=10.0.0.5
//! "CORP\bob"   s3cret        pool=staff
//! ```
//!
//! * The first field is the user name, the second the password; both may be
//!   double-quoted to hold spaces, `#` or quotes (`\"` and `\\` escape inside quotes).
//! * Then optional `key=value` attributes: `address=<IPv4>` (a fixed address for the
//!   user, handed out in IPCP) and `pool=<name>` (the pool to allocate from). Each at
//!   most once; any other key is an error.
//! * A user name appears once. Blank lines and comments are ignored.
//!
//! Errors name the file and line ([`UsersError`]). Lookup by name is a hash lookup.
//! Passwords are kept as the UTF-8 string: PAP and CHAP-MD5 use its bytes
//! ([`User::password_bytes`]), MS-CHAPv2 hashes the string as UTF-16LE (RFC 2759 §8.3).

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

/// One user of the local users file.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The user name, as the peer sends it (PAP Peer-ID, CHAP Name).
    pub name: String,
    /// The password.
    pub password: String,
    /// A fixed IPv4 address for this user.
    pub address: Option<Ipv4Addr>,
    /// The pool to allocate this user's address from.
    pub pool: Option<String>,
}

impl User {
    /// The password as octets (PAP, CHAP-MD5 secret).
    pub fn password_bytes(&self) -> &[u8] {
        self.password.as_bytes()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password into a log.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("address", &self.address)
            .field("pool", &self.pool)
            .finish()
    }
}

/// A parse error in a users file, with its origin and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {kind}")]
pub struct UsersError {
    /// File name (or whatever the caller named the text).
    pub origin: String,
    /// 1-based line number; 0 when the file could not be read.
    pub line: usize,
    /// What is wrong.
    pub kind: UsersErrorKind,
}

/// What is wrong with a users file line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsersErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("a user line needs a name and a password")]
    MissingPassword,
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("unknown escape \\{0} inside quotes")]
    BadEscape(char),
    #[error("expected key=value, found {0:?}")]
    NotAnAttribute(String),
    #[error("unknown attribute {0:?} (known: address, pool)")]
    UnknownAttribute(String),
    #[error("attribute {0} given twice")]
    DuplicateAttribute(&'static str),
    #[error("bad IPv4 address {0:?}")]
    BadAddress(String),
    #[error("empty {0}")]
    Empty(&'static str),
    #[error("user {name:?} already defined on line {first_line}")]
    DuplicateUser { name: String, first_line: usize },
}

/// The local users table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    by_name: HashMap<String, User>,
}

impl Users {
    /// An empty table.
    pub fn new() -> Users {
        Users::default()
    }

    /// Read and parse a users file.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| UsersError {
            origin: origin.clone(),
            line: 0,
            kind: UsersErrorKind::Io(e.to_string()),
        })?;
        Users::parse(&text, &origin)
    }

    /// Parse the text of a users file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Users, UsersError> {
        let mut by_name = HashMap::new();
        let mut lines: HashMap<String, usize> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let error = |kind| UsersError {
                origin: origin.to_owned(),
                line: number,
                kind,
            };
            let Some(user) = parse_line(line).map_err(error)? else {
                continue;
            };
            if let Some(&first_line) = lines.get(&user.name) {
                return Err(error(UsersErrorKind::DuplicateUser {
                    name: user.name,
                    first_line,
                }));
            }
            lines.insert(user.name.clone(), number);
            by_name.insert(user.name.clone(), user);
        }
        Ok(Users { by_name })
    }

    /// Add or replace a user.
    pub fn insert(&mut self, user: User) {
        self.by_name.insert(user.name.clone(), user);
    }

    /// The user of this name (exact, case-sensitive match).
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    /// The user of a name received from a peer (octets; a name that is not UTF-8 is
    /// nobody).
    pub fn get_bytes(&self, name: &[u8]) -> Option<&User> {
        core::str::from_utf8(name).ok().and_then(|n| self.get(n))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Split a line into fields; `None` for a blank or comment line.
fn tokenize(line: &str) -> Result<Vec<String>, UsersErrorKind> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(fields),
            Some('"') => {
                chars.next();
                let mut field = String::new();
                loop {
                    match chars.next() {
                        None => return Err(UsersErrorKind::UnterminatedQuote),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => field.push(c),
                            Some(c) => return Err(UsersErrorKind::BadEscape(c)),
                            None => return Err(UsersErrorKind::UnterminatedQuote),
                        },
                        Some(c) => field.push(c),
                    }
                }
                fields.push(field);
            }
            Some(_) => {
                let mut field = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '#' {
                        break;
                    }
                    field.push(c);
                    chars.next();
                }
                fields.push(field);
            }
        }
    }
}

fn parse_line(line: &str) -> Result<Option<User>, UsersErrorKind> {
    let fields = tokenize(line)?;
    let mut fields = fields.into_iter();
    let Some(name) = fields.next() else {
        return Ok(None);
    };
    let password = fields.next().ok_or(UsersErrorKind::MissingPassword)?;
    if name.is_empty() {
        return Err(UsersErrorKind::Empty("user name"));
    }
    let mut user = User {
        name,
        password,
        address: None,
        pool: None,
    };
    for field in fields {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| UsersErrorKind::NotAnAttribute(field.clone()))?;
        match key {
            "address" => {
                if user.address.is_some() {
                    return Err(UsersErrorKind::DuplicateAttribute("address"));
                }
                let address = value
                    .parse()
                    .map_err(|_| UsersErrorKind::BadAddress(value.to_owned()))?;
                user.address = Some(address);
            }
            "pool" => {
                if user.pool.is_some() {
                    return Err(UsersErrorKind::DuplicateAttribute("pool"));
                }
                if value.is_empty() {
                    return Err(UsersErrorKind::Empty("pool name"));
                }
                user.pool = Some(value.to_owned());
            }
            other => return Err(UsersErrorKind::UnknownAttribute(other.to_owned())),
        }
    }
    Ok(Some(user))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_users_with_attributes_quotes_and_comments() {
        let text = "\
# local users
user1 pw1
alice   \"pass word\"\taddress=10.0.0.5   # fixed address
\"CORP\\\\bob\" s3cret pool=staff
carol s3#x pool=ignored
\"q\\\"uote\" \"#\" address=192.0.2.1 pool=p

";
        let users = Users::parse(text, "users").unwrap();
        assert_eq!(users.len(), 5);
        let u = users.get("user1").unwrap();
        assert_eq!(u.password_bytes(), b"pw1");
        assert_eq!((u.address, u.pool.as_deref()), (None, None));
        let alice = users.get_bytes(b"alice").unwrap();
        assert_eq!(alice.password, "pass word");
        assert_eq!(alice.address, Some(Ipv4Addr::new(10, 0, 0, 5)));
        let bob = users.get("CORP\\bob").unwrap();
        assert_eq!(bob.password, "s3cret");
        // `#` inside an unquoted field starts a comment: the password is "s3".
        let carol = users.get("carol").unwrap();
        assert_eq!(
            (carol.password.as_str(), carol.pool.as_deref()),
            ("s3", None)
        );
        assert_eq!(bob.pool.as_deref(), Some("staff"));
        let q = users.get("q\"uote").unwrap();
        assert_eq!(q.password, "#");
        assert_eq!(q.address, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(q.pool.as_deref(), Some("p"));
        assert!(users.get("User1").is_none());
        assert!(users.get_bytes(b"\xFF").is_none());
        assert!(!format!("{u:?}").contains("pw1"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, usize, UsersErrorKind)] = &[
            ("a b\nlonely\n", 2, UsersErrorKind::MissingPassword),
            ("\"a b\n", 1, UsersErrorKind::UnterminatedQuote),
            ("\"a\\n\" b\n", 1, UsersErrorKind::BadEscape('n')),
            ("a b c\n", 1, UsersErrorKind::NotAnAttribute("c".into())),
            (
                "a b vlan=3\n",
                1,
                UsersErrorKind::UnknownAttribute("vlan".into()),
            ),
            (
                "a b pool=x pool=y\n",
                1,
                UsersErrorKind::DuplicateAttribute("pool"),
            ),
            (
                "a b address=1.2.3.4 address=1.2.3.5\n",
                1,
                UsersErrorKind::DuplicateAttribute("address"),
            ),
            (
                "a b address=10.0.0.256\n",
                1,
                UsersErrorKind::BadAddress("10.0.0.256".into()),
            ),
            ("a b pool=\n", 1, UsersErrorKind::Empty("pool name")),
            ("\"\" b\n", 1, UsersErrorKind::Empty("user name")),
            (
                "# c\na b\n\na c\n",
                4,
                UsersErrorKind::DuplicateUser {
                    name: "a".into(),
                    first_line: 2,
                },
            ),
        ];
        for (text, line, kind) in cases {
            let error = Users::parse(text, "/etc/xlns/users").unwrap_err();
            assert_eq!(
                error,
                UsersError {
                    origin: "/etc/xlns/users".into(),
                    line: *line,
                    kind: kind.clone()
                },
                "{text:?}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("/etc/xlns/users:{line}: "))
            );
        }
    }

    #[test]
    fn load_reads_a_file_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("xlns-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        std::fs::write(&path, "u p pool=a\n").unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(users.get("u").unwrap().pool.as_deref(), Some("a"));
        std::fs::remove_file(&path).unwrap();
        let error = Users::load(&path).unwrap_err();
        assert_eq!(error.line, 0);
        assert!(matches!(error.kind, UsersErrorKind::Io(_)));
        std::fs::remove_dir(&dir).unwrap();
    }
}
