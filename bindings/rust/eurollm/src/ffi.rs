//! Helpers at the FFI boundary: caller-buffer round trips, C strings, and carrying a panic out of
//! a callback (a panic must not unwind through C frames).

use std::any::Any;
use std::cell::RefCell;
use std::ffi::CString;
use std::path::Path;

use eurollm_sys as sys;

use crate::error::{check, invalid, Error, ErrorKind, Result};

/// Run a C function that fills a caller buffer of `cap` elements and reports the needed count
/// through its size argument (`EUROLLM_ERR_BUFFER_TOO_SMALL` when short). `extra` is added to
/// the reported size (1 for NUL-terminated text).
pub(crate) fn fill_buffer<T: Copy + Default>(
    first_guess: usize,
    extra: usize,
    mut call: impl FnMut(*mut T, usize, &mut usize) -> sys::eurollm_status,
) -> Result<Vec<T>> {
    let mut buf: Vec<T> = vec![T::default(); first_guess];
    for _ in 0..4 {
        let mut n = 0usize;
        let cap = buf.len();
        let ptr = if cap == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() };
        let status = call(ptr, cap, &mut n);
        if status == sys::eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL {
            let need = n.checked_add(extra).ok_or_else(|| Error::new(ErrorKind::OutOfMemory, "size overflow"))?;
            if need <= cap {
                // The library asked for no more than we gave: report its error rather than loop.
                return Err(Error::from_last(status));
            }
            buf = vec![T::default(); need];
            continue;
        }
        check(status)?;
        if n > cap {
            return Err(Error::new(ErrorKind::Generic, "the library reported more output than the buffer holds"));
        }
        buf.truncate(n);
        return Ok(buf);
    }
    Err(Error::new(ErrorKind::BufferTooSmall, "the needed buffer size kept changing"))
}

/// A Rust string as a NUL-terminated C string; an interior NUL is INVALID_ARGUMENT.
#[allow(dead_code)] // used by the experimental trainer
pub(crate) fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| invalid(format!("{what} contains a NUL byte")))
}

/// A path as a C string (its bytes on Unix, UTF-8 elsewhere).
pub(crate) fn c_path(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_str().ok_or_else(|| invalid("the path is not valid UTF-8"))?.as_bytes().to_vec();
    CString::new(bytes).map_err(|_| invalid(format!("the path {} contains a NUL byte", path.display())))
}

/// Bytes borrowed from the library as a slice (NULL or empty gives an empty slice).
///
/// # Safety
/// `p` is NULL or valid for `len` elements for the returned lifetime.
pub(crate) unsafe fn slice<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-NULL and valid for `len` elements, as the caller guarantees.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

thread_local! {
    /// The payload of a panic caught in a callback, re-raised once the C call has returned.
    static CALLBACK_PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Run a callback body, catching a panic: it is stored for [`resume_callback_panic`] and `on_panic`
/// is returned to the library instead (so that the library stops the work).
pub(crate) fn catch_callback_panic<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            CALLBACK_PANIC.with(|p| {
                let mut p = p.borrow_mut();
                if p.is_none() {
                    *p = Some(payload);
                }
            });
            on_panic
        }
    }
}

/// After a C call that may have run callbacks on this thread: re-raise a panic one of them caught.
pub(crate) fn resume_callback_panic() {
    if let Some(payload) = CALLBACK_PANIC.with(|p| p.borrow_mut().take()) {
        std::panic::resume_unwind(payload);
    }
}
