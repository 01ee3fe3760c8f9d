//! The raw declarations link and behave as eurollm.h says: versions, status names, NULL handles
//! and buffer sizing. (Generation through these functions is compared with the safe API in the
//! eurollm crate's tests.)

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use eurollm_sys::*;

#[test]
fn runtime_version_equals_the_header_version() {
    unsafe {
        assert_eq!(eurollm_version_number() as u32, EUROLLM_VERSION_NUMBER);
        assert_eq!(
            EUROLLM_VERSION_NUMBER,
            EUROLLM_VERSION_MAJOR * 10000 + EUROLLM_VERSION_MINOR * 100 + EUROLLM_VERSION_PATCH
        );
        let s = CStr::from_ptr(eurollm_version_string());
        assert_eq!(s.to_bytes_with_nul(), &EUROLLM_VERSION_STRING[..]);
    }
}

#[test]
fn every_status_has_a_name_and_unknown_ones_do_not_crash() {
    for code in -10..=1 {
        let name = unsafe { CStr::from_ptr(eurollm_status_string(eurollm_status(code))) };
        assert!(!name.to_bytes().is_empty());
    }
    let unknown = unsafe { CStr::from_ptr(eurollm_status_string(eurollm_status(-12345))) };
    assert!(!unknown.to_bytes().is_empty());
}

#[test]
fn null_handles_are_invalid_arguments_and_free_accepts_null() {
    unsafe {
        let mut v = 0i64;
        let st = eurollm_model_get_info(null(), eurollm_model_info::EUROLLM_INFO_N_VOCAB, &mut v);
        assert_eq!(st, eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT);
        assert!(!CStr::from_ptr(eurollm_last_error()).to_bytes().is_empty());
        let mut out = null_mut();
        assert_eq!(eurollm_context_init(null_mut(), null(), &mut out), eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT);
        assert!(out.is_null());
        assert_eq!(eurollm_generator_step(null_mut(), null_mut()), eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT);
        assert_eq!(eurollm_context_n_ctx(null()), 0);
        eurollm_generator_free(null_mut());
        eurollm_context_free(null_mut());
        eurollm_model_free(null_mut());
    }
}

#[test]
fn params_init_fills_defaults_and_rejects_unknown_versions() {
    unsafe {
        let mut p = eurollm_generator_params::default();
        assert_eq!(eurollm_generator_params_init(&mut p, EUROLLM_GENERATOR_PARAMS_VERSION), eurollm_status::EUROLLM_OK);
        assert_eq!(p.version, EUROLLM_GENERATOR_PARAMS_VERSION);
        assert!(p.max_tokens > 0 && p.temperature > 0.0);
        let st = eurollm_generator_params_init(&mut p, EUROLLM_GENERATOR_PARAMS_VERSION + 1);
        assert_eq!(st, eurollm_status::EUROLLM_ERR_INVALID_ARGUMENT);
        let mut m = eurollm_model_params::default();
        assert_eq!(eurollm_model_params_init(&mut m, EUROLLM_MODEL_PARAMS_VERSION), eurollm_status::EUROLLM_OK);
        assert_eq!(m.device, eurollm_device_kind::EUROLLM_DEVICE_AUTO);
        assert!(m.use_mmap);
    }
}

#[test]
fn missing_model_is_io_and_out_is_null() {
    let path = CString::new("/no/such/model").unwrap();
    unsafe {
        let mut m = 1usize as *mut eurollm_model; // must be overwritten with NULL
        assert_eq!(eurollm_model_load(path.as_ptr(), null(), &mut m), eurollm_status::EUROLLM_ERR_IO);
        assert!(m.is_null());
    }
}

#[test]
fn caller_buffers_report_the_needed_size() {
    let dir = std::env::var_os("EUROLLM_STORIES_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/models/stories260K")
    });
    if !dir.join("config.json").exists() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP caller_buffers_report_the_needed_size: no stories260K at {}",
            dir.display()
        );
        return;
    }
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    unsafe {
        let mut model = null_mut();
        assert_eq!(eurollm_model_load(path.as_ptr(), null(), &mut model), eurollm_status::EUROLLM_OK);
        let text = "Once upon a time";
        let mut n = 0usize;
        let st =
            eurollm_tokenize(model, text.as_ptr().cast(), text.len(), EUROLLM_TOKENIZE_ADD_BOS, null_mut(), 0, &mut n);
        assert_eq!(st, eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL);
        assert!(n > 1);
        let mut ids = vec![0i32; n];
        let mut n2 = 0usize;
        let st = eurollm_tokenize(
            model,
            text.as_ptr().cast(),
            text.len(),
            EUROLLM_TOKENIZE_ADD_BOS,
            ids.as_mut_ptr(),
            n,
            &mut n2,
        );
        assert_eq!(st, eurollm_status::EUROLLM_OK);
        assert_eq!(n2, n);
        let mut len = 0usize;
        let st = eurollm_detokenize(model, ids.as_ptr(), n, null_mut(), 0, &mut len);
        assert_eq!(st, eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL);
        assert_eq!(len, text.len());
        let mut buf = vec![0 as std::os::raw::c_char; len + 1];
        assert_eq!(
            eurollm_detokenize(model, ids.as_ptr(), n, buf.as_mut_ptr(), len + 1, &mut len),
            eurollm_status::EUROLLM_OK
        );
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), text);
        eurollm_model_free(model);
    }
}
