//! [`Error`]: a failed call's status (`eurollm_status`) and message (`eurollm_last_error()`).

use std::ffi::CStr;
use std::fmt;

use eurollm_sys as sys;

/// `Result<T, eurollm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of a failure: one per negative `eurollm_status`.
///
/// New statuses may appear in later versions of the library (`Other` carries their code), so
/// matches need a wildcard arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `EUROLLM_ERR_GENERIC`
    Generic,
    /// `EUROLLM_ERR_INVALID_ARGUMENT`: a bad value, bad text (invalid UTF-8, interior NUL), an
    /// out-of-range token id, a handle in the wrong state.
    InvalidArgument,
    /// `EUROLLM_ERR_OUT_OF_MEMORY`
    OutOfMemory,
    /// `EUROLLM_ERR_DEVICE`: CUDA/HIP failure, device out of memory.
    Device,
    /// `EUROLLM_ERR_IO`: a file is missing, unreadable or unwritable.
    Io,
    /// `EUROLLM_ERR_BAD_MODEL`: a model file is malformed or disagrees with its config.
    BadModel,
    /// `EUROLLM_ERR_BUFFER_TOO_SMALL` (the safe API sizes buffers itself; rarely seen).
    BufferTooSmall,
    /// `EUROLLM_ERR_CONTEXT_FULL`: the tokens do not fit in the context.
    ContextFull,
    /// `EUROLLM_ERR_ABORTED`: the abort callback asked to stop.
    Aborted,
    /// `EUROLLM_ERR_UNSUPPORTED`: a valid request this build cannot serve.
    Unsupported,
    /// A status this version of the crate does not know.
    Other(i32),
}

impl ErrorKind {
    /// The kind of a (negative) status code.
    pub fn from_status(code: i32) -> ErrorKind {
        match sys::eurollm_status(code) {
            sys::eurollm_status::EUROLLM_ERR_GENERIC => ErrorKind::Generic,
            sys::eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT => ErrorKind::InvalidArgument,
            sys::eurollm_status::EUROLLM_ERR_OUT_OF_MEMORY => ErrorKind::OutOfMemory,
            sys::eurollm_status::EUROLLM_ERR_DEVICE => ErrorKind::Device,
            sys::eurollm_status::EUROLLM_ERR_IO => ErrorKind::Io,
            sys::eurollm_status::EUROLLM_ERR_BAD_MODEL => ErrorKind::BadModel,
            sys::eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL => ErrorKind::BufferTooSmall,
            sys::eurollm_status::EUROLLM_ERR_CONTEXT_FULL => ErrorKind::ContextFull,
            sys::eurollm_status::EUROLLM_ERR_ABORTED => ErrorKind::Aborted,
            sys::eurollm_status::EUROLLM_ERR_UNSUPPORTED => ErrorKind::Unsupported,
            _ => ErrorKind::Other(code),
        }
    }

    /// The `eurollm_status` code of this kind.
    pub fn status(self) -> i32 {
        let s = match self {
            ErrorKind::Generic => sys::eurollm_status::EUROLLM_ERR_GENERIC,
            ErrorKind::InvalidArgument => sys::eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT,
            ErrorKind::OutOfMemory => sys::eurollm_status::EUROLLM_ERR_OUT_OF_MEMORY,
            ErrorKind::Device => sys::eurollm_status::EUROLLM_ERR_DEVICE,
            ErrorKind::Io => sys::eurollm_status::EUROLLM_ERR_IO,
            ErrorKind::BadModel => sys::eurollm_status::EUROLLM_ERR_BAD_MODEL,
            ErrorKind::BufferTooSmall => sys::eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL,
            ErrorKind::ContextFull => sys::eurollm_status::EUROLLM_ERR_CONTEXT_FULL,
            ErrorKind::Aborted => sys::eurollm_status::EUROLLM_ERR_ABORTED,
            ErrorKind::Unsupported => sys::eurollm_status::EUROLLM_ERR_UNSUPPORTED,
            ErrorKind::Other(code) => sys::eurollm_status(code),
        };
        s.0
    }
}

/// A failed call: the status and the library's message for it.
///
/// ```
/// # fn main() {
/// let err = eurollm::Model::load("/no/such/model").unwrap_err();
/// assert_eq!(err.kind(), eurollm::ErrorKind::Io);
/// assert!(err.status() < 0);
/// assert!(!err.message().is_empty());
/// println!("{err}"); // "i/o error: ..."
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    /// The error of a status just returned on this thread, with `eurollm_last_error()`.
    pub(crate) fn from_last(status: sys::eurollm_status) -> Error {
        Error { kind: ErrorKind::from_status(status.0), message: last_error() }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `eurollm_status` code (negative).
    pub fn status(&self) -> i32 {
        self.kind.status()
    }

    /// The library's message (`eurollm_last_error()` at the time of the failure).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = status_string(self.status());
        if self.message.is_empty() {
            f.write_str(&name)
        } else {
            write!(f, "{name}: {}", self.message)
        }
    }
}

impl std::error::Error for Error {}

/// The library's fixed English name of a status code (`eurollm_status_string`).
pub fn status_string(status: i32) -> String {
    // SAFETY: eurollm_status_string accepts any value and returns a static, never-NULL string.
    unsafe { cstr_lossy(sys::eurollm_status_string(sys::eurollm_status(status))) }
}

/// The message of the last failed call on this thread (`eurollm_last_error()`).
pub(crate) fn last_error() -> String {
    // SAFETY: never NULL; valid until the next call on this thread, and copied at once.
    unsafe { cstr_lossy(sys::eurollm_last_error()) }
}

/// Copy a C string (NULL gives "").
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub(crate) unsafe fn cstr_lossy(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller guarantees a NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `Ok(status)` for a non-negative status (OK, DONE, ...), the error otherwise.
pub(crate) fn check(status: sys::eurollm_status) -> Result<sys::eurollm_status> {
    if status.0 < 0 {
        Err(Error::from_last(status))
    } else {
        Ok(status)
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}
