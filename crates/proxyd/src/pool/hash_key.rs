//! Hash key templates for `balance: hash`, as nginx's `hash $request_uri`: literal text and
//! variables `$remote_addr`, `$request_uri`, `$uri`, `$host`, `$args`, `$http_<name>` and
//! `$cookie_<name>`, in any combination (`$remote_addr$http_x_user`, `user-$cookie_id`).
//!
//! Parsed once per configuration; evaluated per request against a [`KeySource`]. Pure.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    RemoteAddr,
    RequestUri,
    Uri,
    Args,
    Host,
    /// Lower-case header name, `_` turned into `-`.
    Header(String),
    Cookie(String),
}

/// A parsed `hash_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKey {
    parts: Vec<Part>,
}

/// What a template reads from a request.
pub trait KeySource {
    fn remote_addr(&self) -> String;
    /// Path and query.
    fn request_uri(&self) -> &str;
    fn header(&self, name: &str) -> Option<&str>;
    fn cookie(&self, name: &str) -> Option<&str>;
    fn host(&self) -> &str;
}

/// A template variable that is not one of the supported ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variable ${name} in hash_key (expected $remote_addr, $request_uri, $uri, $args, $host, $http_<name> or $cookie_<name>)")]
pub struct UnknownVariable {
    pub name: String,
}

impl HashKey {
    pub fn parse(template: &str) -> Result<Self, UnknownVariable> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find('$') {
                Some(0) => {
                    let name_len = rest[1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len() - 1);
                    let name = &rest[1..1 + name_len];
                    parts.push(variable(name)?);
                    rest = &rest[1 + name_len..];
                }
                Some(at) => {
                    parts.push(Part::Literal(rest[..at].to_owned()));
                    rest = &rest[at..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(Self { parts })
    }

    /// The key for one request; missing headers or cookies expand to nothing.
    pub fn evaluate(&self, source: &impl KeySource) -> String {
        let mut key = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => key.push_str(text),
                Part::RemoteAddr => key.push_str(&source.remote_addr()),
                Part::RequestUri => key.push_str(source.request_uri()),
                Part::Uri => {
                    let uri = source.request_uri();
                    key.push_str(uri.split_once('?').map_or(uri, |(path, _)| path));
                }
                Part::Args => {
                    if let Some((_, args)) = source.request_uri().split_once('?') {
                        key.push_str(args);
                    }
                }
                Part::Host => key.push_str(source.host()),
                Part::Header(name) => key.push_str(source.header(name).unwrap_or("")),
                Part::Cookie(name) => key.push_str(source.cookie(name).unwrap_or("")),
            }
        }
        key
    }
}

fn variable(name: &str) -> Result<Part, UnknownVariable> {
    Ok(match name {
        "remote_addr" => Part::RemoteAddr,
        "request_uri" => Part::RequestUri,
        "uri" => Part::Uri,
        "args" => Part::Args,
        "host" => Part::Host,
        _ => {
            if let Some(header) = name.strip_prefix("http_").filter(|h| !h.is_empty()) {
                Part::Header(header.to_ascii_lowercase().replace('_', "-"))
            } else if let Some(cookie) = name.strip_prefix("cookie_").filter(|c| !c.is_empty()) {
                Part::Cookie(cookie.to_owned())
            } else {
                return Err(UnknownVariable {
                    name: name.to_owned(),
                });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl KeySource for Fake {
        fn remote_addr(&self) -> String {
            "192.0.2.7".into()
        }
        fn request_uri(&self) -> &str {
            "/a/b?x=1"
        }
        fn header(&self, name: &str) -> Option<&str> {
            (name == "x-user").then_some("alice")
        }
        fn cookie(&self, name: &str) -> Option<&str> {
            (name == "sid").then_some("s42")
        }
        fn host(&self) -> &str {
            "www.example"
        }
    }

    #[test]
    fn variables_and_literals_combine() {
        let key = HashKey::parse("$remote_addr-$http_x_user/$cookie_sid$request_uri").expect("ok");
        assert_eq!(key.evaluate(&Fake), "192.0.2.7-alice/s42/a/b?x=1");
        let key = HashKey::parse("$host$uri|$args").expect("ok");
        assert_eq!(key.evaluate(&Fake), "www.example/a/b|x=1");
    }

    #[test]
    fn missing_values_expand_to_nothing() {
        let key = HashKey::parse("$http_x_none$cookie_none").expect("ok");
        assert_eq!(key.evaluate(&Fake), "");
    }

    #[test]
    fn unknown_variables_are_refused() {
        assert_eq!(
            HashKey::parse("$nope").unwrap_err().name,
            "nope".to_string()
        );
        assert!(HashKey::parse("$http_").is_err());
    }
}
