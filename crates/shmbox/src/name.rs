//! Validated segment names.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The name of a segment, checked to be usable on every platform.
///
/// A name is 1 to [`SegmentName::MAX_LEN`] bytes of UTF-8 and may not be `.` or
/// `..` or contain `/`, `\` or NUL. Names are case-sensitive. Processes that
/// open the same name share the same segment.
///
/// On Windows a name may start with the kernel namespace `Local\` (the
/// default: the segment is visible in this logon session only) or
/// `Global\` (visible to every session; creating one takes the
/// SeCreateGlobalPrivilege). The prefix applies to every object the segment
/// uses, the mutex `sync_NAME` included.
///
/// ```
/// use shmbox::SegmentName;
///
/// let name = SegmentName::new("MYAPPSHAREDMEMORY")?;
/// assert_eq!(name.as_str(), "MYAPPSHAREDMEMORY");
/// assert!(SegmentName::new("a/b").is_err());
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName(String);

impl SegmentName {
    /// The longest name, in bytes.
    ///
    /// ```
    /// use shmbox::SegmentName;
    /// assert!(SegmentName::new("n".repeat(SegmentName::MAX_LEN)).is_ok());
    /// assert!(SegmentName::new("n".repeat(SegmentName::MAX_LEN + 1)).is_err());
    /// ```
    ///
    /// Linux allows 255 bytes for a file name; the segment's file adds a
    /// prefix, and the Windows backend adds `sync_` and a namespace. 200 bytes
    /// leaves room for both.
    pub const MAX_LEN: usize = 200;

    /// Checks `name` and wraps it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] says which rule the name breaks.
    ///
    /// ```
    /// use shmbox::{Error, SegmentName};
    ///
    /// let err = SegmentName::new("..").unwrap_err();
    /// assert!(matches!(err, Error::InvalidName { .. }));
    /// assert_eq!(err.to_string(), r#"invalid segment name "..": "." and ".." are reserved"#);
    /// ```
    pub fn new(name: impl Into<String>) -> Result<SegmentName> {
        let name = name.into();
        let (namespace, base) = split_namespace(&name);
        let reason = if base.is_empty() && !namespace.is_empty() {
            Some("it has a namespace but no name after it")
        } else if name.is_empty() {
            Some("it is empty")
        } else if name.len() > Self::MAX_LEN {
            Some("it is longer than 200 bytes")
        } else if base == "." || base == ".." {
            Some("\".\" and \"..\" are reserved")
        } else if name.contains('/') {
            Some("it contains '/'")
        } else if base.contains('\\') {
            Some("it contains '\\'")
        } else if name.contains('\0') {
            Some("it contains a NUL byte")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidName { name, reason }),
            None => Ok(SegmentName(name)),
        }
    }

    /// The name as a string.
    ///
    /// ```
    /// let name = shmbox::SegmentName::new("orders")?;
    /// assert_eq!(name.as_str(), "orders");
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Windows namespace prefix (`Global\`, `Local\` or empty) and the
    /// rest of the name.
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn namespace_and_base(&self) -> (&str, &str) {
        split_namespace(&self.0)
    }
}

/// Splits off a leading `Global\` or `Local\` on Windows, spelled in any
/// case, as the kernel matches them; elsewhere a backslash is just a
/// forbidden character.
fn split_namespace(name: &str) -> (&str, &str) {
    if cfg!(windows) {
        for namespace in ["Global\\", "Local\\"] {
            let n = namespace.len();
            if name.len() >= n
                && name.is_char_boundary(n)
                && name[..n].eq_ignore_ascii_case(namespace)
            {
                return name.split_at(n);
            }
        }
    }
    ("", name)
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SegmentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for SegmentName {
    type Err = Error;

    fn from_str(s: &str) -> Result<SegmentName> {
        SegmentName::new(s)
    }
}

impl TryFrom<&str> for SegmentName {
    type Error = Error;

    fn try_from(s: &str) -> Result<SegmentName> {
        SegmentName::new(s)
    }
}

impl TryFrom<String> for SegmentName {
    type Error = Error;

    fn try_from(s: String) -> Result<SegmentName> {
        SegmentName::new(s)
    }
}

impl TryFrom<&String> for SegmentName {
    type Error = Error;

    fn try_from(s: &String) -> Result<SegmentName> {
        SegmentName::new(s.as_str())
    }
}

impl TryFrom<&SegmentName> for SegmentName {
    type Error = Error;

    fn try_from(s: &SegmentName) -> Result<SegmentName> {
        Ok(s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> &'static str {
        match SegmentName::new(name) {
            Err(Error::InvalidName { reason, .. }) => reason,
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn refuses_each_bad_form() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason(&"x".repeat(201)), "it is longer than 200 bytes");
        assert_eq!(reason("."), "\".\" and \"..\" are reserved");
        assert_eq!(reason(".."), "\".\" and \"..\" are reserved");
        assert_eq!(reason("a/b"), "it contains '/'");
        assert_eq!(reason("a\\b"), "it contains '\\'");
        assert_eq!(reason("a\0b"), "it contains a NUL byte");
    }

    #[test]
    #[cfg(not(windows))]
    fn windows_namespaces_are_refused_elsewhere() {
        assert_eq!(reason("Global\\x"), "it contains '\\'");
        assert_eq!(reason("Local\\x"), "it contains '\\'");
    }

    #[test]
    #[cfg(windows)]
    fn windows_namespaces_are_split_off() {
        let global = SegmentName::new("Global\\MYAPP").unwrap();
        assert_eq!(global.namespace_and_base(), ("Global\\", "MYAPP"));
        let plain = SegmentName::new("MYAPP").unwrap();
        assert_eq!(plain.namespace_and_base(), ("", "MYAPP"));
        // The kernel matches the prefixes in any case: so does shmbox.
        let lower = SegmentName::new("global\\MYAPP").unwrap();
        assert_eq!(lower.namespace_and_base(), ("global\\", "MYAPP"));
        let upper = SegmentName::new("LOCAL\\MYAPP").unwrap();
        assert_eq!(upper.namespace_and_base(), ("LOCAL\\", "MYAPP"));
        assert_eq!(
            reason("Global\\"),
            "it has a namespace but no name after it"
        );
        assert_eq!(reason("Global\\a\\b"), "it contains '\\'");
        assert_eq!(reason("Local\\.."), "\".\" and \"..\" are reserved");
        assert_eq!(reason("Session\\x"), "it contains '\\'");
    }

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "MYAPPSHAREDMEMORY",
            ".hidden",
            "a.b",
            "共享内存",
            &"y".repeat(200),
        ] {
            assert_eq!(SegmentName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn long_multibyte_names_count_bytes() {
        // 67 three-byte characters are 201 bytes.
        assert_eq!(reason(&"内".repeat(67)), "it is longer than 200 bytes");
        assert!(SegmentName::new("内".repeat(66)).is_ok());
    }
}
