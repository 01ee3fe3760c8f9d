//! Routing the library's log lines (`eurollm_log_set`) to a Rust closure.

use std::os::raw::{c_char, c_void};
use std::sync::{Arc, RwLock};

use eurollm_sys as sys;

use crate::error::cstr_lossy;

/// Severity of a log line (`eurollm_log_level`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Details for debugging.
    Debug,
    /// Progress information.
    Info,
    /// Something the caller may want to know (the default threshold).
    Warn,
    /// A failure.
    Error,
    /// As a threshold: nothing at all.
    None,
}

impl LogLevel {
    fn to_raw(self) -> sys::eurollm_log_level {
        use sys::eurollm_log_level as L;
        match self {
            LogLevel::Debug => L::EUROLLM_LOG_DEBUG,
            LogLevel::Info => L::EUROLLM_LOG_INFO,
            LogLevel::Warn => L::EUROLLM_LOG_WARN,
            LogLevel::Error => L::EUROLLM_LOG_ERROR,
            LogLevel::None => L::EUROLLM_LOG_NONE,
        }
    }

    fn from_raw(level: sys::eurollm_log_level) -> LogLevel {
        use sys::eurollm_log_level as L;
        match level {
            L::EUROLLM_LOG_DEBUG => LogLevel::Debug,
            L::EUROLLM_LOG_INFO => LogLevel::Info,
            L::EUROLLM_LOG_WARN => LogLevel::Warn,
            L::EUROLLM_LOG_ERROR => LogLevel::Error,
            _ => LogLevel::None,
        }
    }
}

type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

static LOGGER: RwLock<Option<Arc<LogFn>>> = RwLock::new(None);

/// Send the library's log lines at `min_level` and above to `f` (process-wide; replaces the
/// default, which prints WARN and above to stderr). `f` may be called from any library thread;
/// a panic in it is caught and dropped. Call it before loading models, not concurrently with
/// other calls into the library.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let sink = lines.clone();
/// eurollm::set_log_callback(eurollm::LogLevel::Warn, move |level, msg| {
///     sink.lock().unwrap().push(format!("{level:?}: {msg}"));
/// });
/// eurollm::reset_log_callback();
/// ```
pub fn set_log_callback<F>(min_level: LogLevel, f: F)
where
    F: Fn(LogLevel, &str) + Send + Sync + 'static,
{
    *LOGGER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(f));
    // SAFETY: the trampoline reads the closure from LOGGER; no user data is passed.
    unsafe { sys::eurollm_log_set(Some(log_trampoline), min_level.to_raw(), std::ptr::null_mut()) }
}

/// Restore the library's default logging (WARN and above to stderr).
pub fn reset_log_callback() {
    // SAFETY: NULL restores the default.
    unsafe { sys::eurollm_log_set(None, sys::eurollm_log_level::EUROLLM_LOG_WARN, std::ptr::null_mut()) }
    *LOGGER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

unsafe extern "C" fn log_trampoline(level: sys::eurollm_log_level, message: *const c_char, _user: *mut c_void) {
    let f = LOGGER.read().ok().and_then(|g| g.clone());
    if let Some(f) = f {
        // SAFETY: a NUL-terminated line valid for the duration of the call.
        let msg = unsafe { cstr_lossy(message) };
        // A panic must not unwind into C; a log line is not worth aborting for.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(LogLevel::from_raw(level), &msg)));
    }
}
