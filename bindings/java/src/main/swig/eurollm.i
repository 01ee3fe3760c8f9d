/*
 * eurollm.i -- the SWIG interface that generates the JNI layer of the Java binding from
 * capi/eurollm.h (the only header it includes).
 *
 * Output (package eu.eurollm, generated at build time, never edited by hand):
 *   EurollmNative.java / EurollmNativeJNI.java   package-private static functions (lowerCamelCase)
 *   ModelParams, ContextParams, GeneratorParams, EmbedParams   package-private params proxies
 *   Status, DeviceKind, LogLevel, ModelInfo, StopReason, Pooling, WeightType, Precision   public Java enums
 *   eurollm_wrap.c                                the JNI C code, compiled into libeurollm_jni.so
 * The public, idiomatic API (Model, Context, Generator, ...) is hand-written on top of these.
 *
 * How the C conventions map to Java:
 *   - Handles (eurollm_model *, ...) are plain Java `long`s; `eurollm_x **out` is a `long[1]`.
 *   - A negative eurollm_status is thrown as a checked eu.eurollm.EurollmException carrying the
 *     status and eurollm_last_error(); OK and DONE are returned as Status. Only the functions with
 *     caller-sized buffers (EUROLLM_SIZED below) return BUFFER_TOO_SMALL instead of throwing, so
 *     the Java layer can ask for the needed size and call again.
 *   - Text crosses the boundary as UTF-8 `byte[]` (never JNI's "modified UTF-8"): the Java layer
 *     encodes and decodes with StandardCharsets.UTF_8, so any Unicode text round-trips.
 *   - int32_t arrays are int[], float arrays float[], size_t / int64_t outputs long[1] holders,
 *     borrowed outputs (text delta, logits) are copied into fresh Java arrays via a holder.
 *
 * Adding an API: everything is ignored (%ignoreall) unless allow-listed below with its Java name.
 * A new function whose arguments use the patterns above needs only its %rename line; a new handle
 * type needs one EUROLLM_HANDLE line; a new enum one %rename line (items are renamed by the rule).
 */
%module EurollmNative

%include "enums.swg"
%include "stdint.i"
%javaconst(1);

/* ---- allowlist machinery (OR-Tools style) ---------------------------------------------------- */
%define %ignoreall %ignore ""; %enddef
%define %unignore %rename("%s") %enddef

%ignoreall

/* Struct fields: lowerCamelCase (max_tokens -> getMaxTokens/setMaxTokens). */
%rename("%(lowercamelcase)s", %$isvariable) "";
/* Enum items: drop the enum's prefix (EUROLLM_DEVICE_CPU -> DeviceKind.CPU). Status keeps ERR_
 * (Status.ERR_IO), as C does, which also keeps it apart from StopReason.CONTEXT_FULL. */
%rename("%(regex:/^EUROLLM_(DEVICE_|LOG_|INFO_|STOP_|POOLING_|TRAIN_|SCHEDULE_|TENSOR_|WEIGHT_|PRECISION_)?(.*)$/\\2/)s", %$isenumitem) "";
%rename(OFF) EUROLLM_LOG_NONE;  /* LogLevel.NONE would collide with StopReason.NONE */

/* Generated plumbing is package-private; only the enums are public API. */
%pragma(java) moduleclassmodifiers="final class"
%pragma(java) jniclassclassmodifiers="final class"
%typemap(javaclassmodifiers) SWIGTYPE "final class"
%typemap(javafinalize) SWIGTYPE ""

%{
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "eurollm.h"

/* Throws eu.eurollm.EurollmException(status, eurollm_last_error()) unless an exception is
 * already pending. The message goes over as UTF-8 bytes, decoded in Java. */
static void eurollm_jni_throw(JNIEnv *jenv, int status) {
    const char *msg;
    size_t n;
    jclass cls;
    jmethodID ctor;
    jbyteArray bytes;
    jobject ex;
    if ((*jenv)->ExceptionCheck(jenv)) return;
    msg = eurollm_last_error();
    if (!msg || !*msg) msg = eurollm_status_string((eurollm_status)status);
    n = strlen(msg);
    cls = (*jenv)->FindClass(jenv, "eu/eurollm/EurollmException");
    if (!cls) return; /* NoClassDefFoundError is pending */
    ctor = (*jenv)->GetMethodID(jenv, cls, "<init>", "(I[B)V");
    if (!ctor) return;
    bytes = (*jenv)->NewByteArray(jenv, (jsize)n);
    if (!bytes) return;
    (*jenv)->SetByteArrayRegion(jenv, bytes, 0, (jsize)n, (const jbyte *)msg);
    ex = (*jenv)->NewObject(jenv, cls, ctor, (jint)status, bytes);
    if (ex) (*jenv)->Throw(jenv, (jthrowable)ex);
    (*jenv)->DeleteLocalRef(jenv, bytes);
    (*jenv)->DeleteLocalRef(jenv, cls);
}

static void eurollm_jni_npe(JNIEnv *jenv, const char *what) {
    SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, what);
}

/* Copies a Java byte[][] (kind 0) or int[][] (kind 1) into malloc'd row pointers and lengths. */
static void eurollm_jni_rows_free(void **ptrs, size_t *lens) {
    size_t i;
    if (ptrs) {
        for (i = 0; ptrs[i]; ++i) free(ptrs[i]);
        free(ptrs);
    }
    free(lens);
}

static int eurollm_jni_rows_in(JNIEnv *jenv, jobjectArray rows, int kind, void ***ptrs, size_t **lens, size_t *n) {
    jsize i, count;
    const size_t elem = kind == 0 ? 1 : sizeof(int32_t);
    *ptrs = NULL; *lens = NULL; *n = 0;
    if (!rows) { eurollm_jni_npe(jenv, "rows"); return 0; }
    count = (*jenv)->GetArrayLength(jenv, rows);
    *ptrs = (void **)calloc((size_t)count + 1, sizeof(void *)); /* NULL-terminated for freeing */
    *lens = (size_t *)calloc((size_t)count + 1, sizeof(size_t));
    if (!*ptrs || !*lens) {
        SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "rows");
        goto fail;
    }
    for (i = 0; i < count; ++i) {
        jarray row = (jarray)(*jenv)->GetObjectArrayElement(jenv, rows, i);
        jsize len;
        if (!row) { eurollm_jni_npe(jenv, "a row is null"); goto fail; }
        len = (*jenv)->GetArrayLength(jenv, row);
        (*ptrs)[i] = malloc((size_t)len * elem + 1);
        if (!(*ptrs)[i]) {
            (*jenv)->DeleteLocalRef(jenv, row);
            SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "rows");
            goto fail;
        }
        if (kind == 0) (*jenv)->GetByteArrayRegion(jenv, (jbyteArray)row, 0, len, (jbyte *)(*ptrs)[i]);
        else (*jenv)->GetIntArrayRegion(jenv, (jintArray)row, 0, len, (jint *)(*ptrs)[i]);
        (*lens)[i] = (size_t)len;
        (*jenv)->DeleteLocalRef(jenv, row);
    }
    *n = (size_t)count;
    return 1;
fail:
    eurollm_jni_rows_free(*ptrs, *lens);
    *ptrs = NULL; *lens = NULL;
    return 0;
}

static int eurollm_jni_holder_ok(JNIEnv *jenv, jarray a, const char *what) {
    if (!a) { eurollm_jni_npe(jenv, what); return 0; }
    if ((*jenv)->GetArrayLength(jenv, a) < 1) {
        SWIG_JavaThrowException(jenv, SWIG_JavaIndexOutOfBoundsException, what);
        return 0;
    }
    return 1;
}
%}

/* ---- scalar types ---------------------------------------------------------------------------- */
/* uint64_t (seeds) as a Java long: the same 64 bits, read as two's complement. */
%typemap(jni) uint64_t "jlong"
%typemap(jtype) uint64_t "long"
%typemap(jstype) uint64_t "long"
%typemap(in) uint64_t %{ $1 = (uint64_t)$input; %}
%typemap(out) uint64_t %{ $result = (jlong)$1; %}
%typemap(javain) uint64_t "$javainput"
%typemap(javaout) uint64_t { return $jnicall; }

/* ---- status: negative -> EurollmException ---------------------------------------------------- */
%typemap(jni) eurollm_status "jint"
%typemap(jtype) eurollm_status "int"
%typemap(jstype) eurollm_status "Status"
%typemap(out, throws="EurollmException") eurollm_status %{ $result = (jint)$1; %}
/* "ret" runs after every argout/freearg, so buffers are released before the exception is thrown. */
%typemap(ret) eurollm_status %{
    if ((int)$1 < 0) eurollm_jni_throw(jenv, (int)$1);
%}
%typemap(javaout) eurollm_status { return Status.swigToEnum($jnicall); }

/* Functions with caller-sized outputs return BUFFER_TOO_SMALL (with the needed size written to
 * their size holder) instead of throwing it. */
%define EUROLLM_SIZED(FUNC)
%typemap(ret) eurollm_status FUNC %{
    if ((int)$1 < 0 && $1 != EUROLLM_ERR_BUFFER_TOO_SMALL) eurollm_jni_throw(jenv, (int)$1);
%}
%enddef

/* ---- opaque handles as long ------------------------------------------------------------------ */
%define EUROLLM_HANDLE(TYPE)
%typemap(jni) TYPE *, const TYPE * "jlong"
%typemap(jtype) TYPE *, const TYPE * "long"
%typemap(jstype) TYPE *, const TYPE * "long"
%typemap(in) TYPE *, const TYPE * %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) TYPE *, const TYPE * %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) TYPE *, const TYPE * "$javainput"
%typemap(javaout) TYPE *, const TYPE * { return $jnicall; }
/* TYPE **out: a long[1] that receives the new handle */
%typemap(jni) TYPE ** "jlongArray"
%typemap(jtype) TYPE ** "long[]"
%typemap(jstype) TYPE ** "long[]"
%typemap(javain) TYPE ** "$javainput"
%typemap(in) TYPE ** (TYPE *temp = NULL) %{
    if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "$1_name holder")) return $null;
    $1 = &temp;
%}
%typemap(argout) TYPE ** {
    jlong *p = (*jenv)->GetLongArrayElements(jenv, $input, NULL);
    if (p) { p[0] = (jlong)(intptr_t)temp$argnum; (*jenv)->ReleaseLongArrayElements(jenv, $input, p, 0); }
}
%enddef

EUROLLM_HANDLE(eurollm_model)
EUROLLM_HANDLE(eurollm_context)
EUROLLM_HANDLE(eurollm_generator)

/* ---- text ------------------------------------------------------------------------------------ */
/* (text, len) inputs: UTF-8 byte[]; null means (NULL, 0). */
%typemap(jni) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) "jbyteArray"
%typemap(jtype) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) "byte[]"
%typemap(jstype) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) "byte[]"
%typemap(javain) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) "$javainput"
%typemap(in) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (char *)(*jenv)->GetByteArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (const char *text, size_t text_len), (const char *prompt, size_t prompt_len) %{
    if ($1) (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, JNI_ABORT);
%}

/* NUL-terminated inputs (paths): UTF-8 byte[] without the NUL; null stays NULL. */
%typemap(jni) const char *path "jbyteArray"
%typemap(jtype) const char *path "byte[]"
%typemap(jstype) const char *path "byte[]"
%typemap(javain) const char *path "$javainput"
%typemap(in) const char *path %{
    $1 = NULL;
    if ($input) {
        jsize n = (*jenv)->GetArrayLength(jenv, $input);
        $1 = (char *)malloc((size_t)n + 1);
        if (!$1) { SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "path"); return $null; }
        (*jenv)->GetByteArrayRegion(jenv, $input, 0, n, (jbyte *)$1);
        $1[n] = '\0';
    }
%}
%typemap(freearg) const char *path %{ free((void *)$1); %}

/* const char * results: UTF-8 byte[] in JNI, String (or null) in Java. */
%typemap(jni) const char * "jbyteArray"
%typemap(jtype) const char * "byte[]"
%typemap(jstype) const char * "String"
%typemap(out) const char * %{
    $result = NULL;
    if ($1) {
        size_t n = strlen($1);
        $result = (*jenv)->NewByteArray(jenv, (jsize)n);
        if ($result) (*jenv)->SetByteArrayRegion(jenv, $result, 0, (jsize)n, (const jbyte *)$1);
    }
%}
%typemap(javaout) const char * {
    byte[] utf8 = $jnicall;
    return utf8 == null ? null : new String(utf8, java.nio.charset.StandardCharsets.UTF_8);
  }

/* Caller text buffers: byte[] of `cap` bytes (null means NULL with cap 0). */
%typemap(jni) (char *text, size_t cap), (char *piece, size_t cap) "jbyteArray"
%typemap(jtype) (char *text, size_t cap), (char *piece, size_t cap) "byte[]"
%typemap(jstype) (char *text, size_t cap), (char *piece, size_t cap) "byte[]"
%typemap(javain) (char *text, size_t cap), (char *piece, size_t cap) "$javainput"
%typemap(in) (char *text, size_t cap), (char *piece, size_t cap) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (char *)(*jenv)->GetByteArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (char *text, size_t cap), (char *piece, size_t cap) %{
    if ($1) (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, 0);
%}

/* Borrowed text output (generator text delta): copied into holder[0] as a fresh byte[]. */
%typemap(jni) (const char **text, size_t *len) "jobjectArray"
%typemap(jtype) (const char **text, size_t *len) "byte[][]"
%typemap(jstype) (const char **text, size_t *len) "byte[][]"
%typemap(javain) (const char **text, size_t *len) "$javainput"
%typemap(in) (const char **text, size_t *len) (const char *text_temp = NULL, size_t len_temp = 0) %{
    if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "text holder")) return $null;
    $1 = ($1_ltype)&text_temp; $2 = &len_temp;
%}
%typemap(argout) (const char **text, size_t *len) {
    if (text_temp$argnum && !(*jenv)->ExceptionCheck(jenv)) {
        jbyteArray b = (*jenv)->NewByteArray(jenv, (jsize)len_temp$argnum);
        if (b) {
            (*jenv)->SetByteArrayRegion(jenv, b, 0, (jsize)len_temp$argnum, (const jbyte *)text_temp$argnum);
            (*jenv)->SetObjectArrayElement(jenv, $input, 0, b);
            (*jenv)->DeleteLocalRef(jenv, b);
        }
    }
}

/* ---- token arrays ---------------------------------------------------------------------------- */
/* Input ids: int[] (null means NULL with 0 ids). */
%typemap(jni) (const int32_t *tokens, size_t n_tokens) "jintArray"
%typemap(jtype) (const int32_t *tokens, size_t n_tokens) "int[]"
%typemap(jstype) (const int32_t *tokens, size_t n_tokens) "int[]"
%typemap(javain) (const int32_t *tokens, size_t n_tokens) "$javainput"
%typemap(in) (const int32_t *tokens, size_t n_tokens) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (int32_t *)(*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (const int32_t *tokens, size_t n_tokens) %{
    if ($1) (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, JNI_ABORT);
%}

/* Output ids into a caller int[] of `cap` entries (null means NULL with cap 0). */
%typemap(jni) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) "jintArray"
%typemap(jtype) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) "int[]"
%typemap(jstype) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) "int[]"
%typemap(javain) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) "$javainput"
%typemap(in) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (int32_t *)(*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (int32_t *tokens, size_t cap), (int32_t *ids, size_t cap) %{
    if ($1) (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, 0);
%}

/* One sampled token: int[1] holder (null allowed: the C API accepts NULL). */
%typemap(jni) int32_t *token "jintArray"
%typemap(jtype) int32_t *token "int[]"
%typemap(jstype) int32_t *token "int[]"
%typemap(javain) int32_t *token "$javainput"
%typemap(in) int32_t *token (int32_t temp = -1) %{
    $1 = NULL;
    if ($input) {
        if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "token holder")) return $null;
        $1 = &temp;
    }
%}
%typemap(argout) int32_t *token {
    if ($input) {
        jint *p = (*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (p) { p[0] = (jint)temp$argnum; (*jenv)->ReleaseIntArrayElements(jenv, $input, p, 0); }
    }
}

/* ---- numeric outputs ------------------------------------------------------------------------- */
/* size_t / int64_t outputs: long[1] holders. */
%define EUROLLM_LONG_OUT(CTYPE, NAME)
%typemap(jni) CTYPE *NAME "jlongArray"
%typemap(jtype) CTYPE *NAME "long[]"
%typemap(jstype) CTYPE *NAME "long[]"
%typemap(javain) CTYPE *NAME "$javainput"
%typemap(in) CTYPE *NAME (CTYPE temp = 0) %{
    if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "$1_name holder")) return $null;
    $1 = &temp;
%}
%typemap(argout) CTYPE *NAME {
    jlong *p = (*jenv)->GetLongArrayElements(jenv, $input, NULL);
    if (p) { p[0] = (jlong)temp$argnum; (*jenv)->ReleaseLongArrayElements(jenv, $input, p, 0); }
}
%enddef
EUROLLM_LONG_OUT(size_t, n_out)
EUROLLM_LONG_OUT(size_t, len_out)
EUROLLM_LONG_OUT(int64_t, value)

/* Logits of the generator: a fresh float[n_vocab] in holder[0] (the size output is implied). */
%typemap(jni) (const float **logits, size_t *n_vocab) "jobjectArray"
%typemap(jtype) (const float **logits, size_t *n_vocab) "float[][]"
%typemap(jstype) (const float **logits, size_t *n_vocab) "float[][]"
%typemap(javain) (const float **logits, size_t *n_vocab) "$javainput"
%typemap(in) (const float **logits, size_t *n_vocab) (const float *logits_temp = NULL, size_t n_temp = 0) %{
    if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "logits holder")) return $null;
    $1 = ($1_ltype)&logits_temp; $2 = &n_temp;
%}
%typemap(argout) (const float **logits, size_t *n_vocab) {
    if (logits_temp$argnum && !(*jenv)->ExceptionCheck(jenv)) {
        jfloatArray f = (*jenv)->NewFloatArray(jenv, (jsize)n_temp$argnum);
        if (f) {
            (*jenv)->SetFloatArrayRegion(jenv, f, 0, (jsize)n_temp$argnum, logits_temp$argnum);
            (*jenv)->SetObjectArrayElement(jenv, $input, 0, f);
            (*jenv)->DeleteLocalRef(jenv, f);
        }
    }
}

/* Logits of the last decoded token: copied into a caller float[] (null: not copied). The C API
 * does not say how many there are, so the caller passes exactly n_vocab floats (Context.decode). */
%typemap(jni) const float **logits "jfloatArray"
%typemap(jtype) const float **logits "float[]"
%typemap(jstype) const float **logits "float[]"
%typemap(javain) const float **logits "$javainput"
%typemap(in) const float **logits (const float *temp = NULL) %{ $1 = ($1_ltype)&temp; %}
%typemap(argout) const float **logits {
    if ($input && temp$argnum && !(*jenv)->ExceptionCheck(jenv))
        (*jenv)->SetFloatArrayRegion(jenv, $input, 0, (*jenv)->GetArrayLength(jenv, $input), temp$argnum);
}

/* Row-major logits of every decoded token into a caller float[] of `cap` floats. */
%typemap(jni) (float *logits, size_t cap) "jfloatArray"
%typemap(jtype) (float *logits, size_t cap) "float[]"
%typemap(jstype) (float *logits, size_t cap) "float[]"
%typemap(javain) (float *logits, size_t cap) "$javainput"
%typemap(in) (float *logits, size_t cap) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = (float *)(*jenv)->GetFloatArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (float *logits, size_t cap) %{
    if ($1) (*jenv)->ReleaseFloatArrayElements(jenv, $input, (jfloat *)$1, 0);
%}
%typemap(argout) (float *logits, size_t cap) "" /* (keeps `float *out` below from matching) */

/* Several inputs of different lengths: byte[][] (UTF-8 texts) or int[][] (token lists). Every
 * element must be non-null (the Java layer checks; here a null throws NullPointerException). */
%typemap(jni) (const char *const *texts, const size_t *text_lens, size_t n) "jobjectArray"
%typemap(jtype) (const char *const *texts, const size_t *text_lens, size_t n) "byte[][]"
%typemap(jstype) (const char *const *texts, const size_t *text_lens, size_t n) "byte[][]"
%typemap(javain) (const char *const *texts, const size_t *text_lens, size_t n) "$javainput"
%typemap(in) (const char *const *texts, const size_t *text_lens, size_t n) {
    if (!eurollm_jni_rows_in(jenv, $input, 0, (void ***)&$1, (size_t **)&$2, &$3)) return $null;
}
%typemap(freearg) (const char *const *texts, const size_t *text_lens, size_t n) {
    eurollm_jni_rows_free((void **)$1, (size_t *)$2);
}
%typemap(jni) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) "jobjectArray"
%typemap(jtype) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) "int[][]"
%typemap(jstype) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) "int[][]"
%typemap(javain) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) "$javainput"
%typemap(in) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) {
    if (!eurollm_jni_rows_in(jenv, $input, 1, (void ***)&$1, (size_t **)&$2, &$3)) return $null;
}
%typemap(freearg) (const int32_t *const *tokens, const size_t *n_tokens, size_t n) {
    eurollm_jni_rows_free((void **)$1, (size_t *)$2);
}

/* Float outputs into a caller float[] of `cap` floats (embeddings, trainer logits and tensors). */
%apply (float *logits, size_t cap) { (float *out, size_t cap) };
EUROLLM_LONG_OUT(size_t, n_rows_out)
EUROLLM_LONG_OUT(size_t, dim_out)

/* Float vector inputs (cosine similarity): float[]; the Java layer passes dim <= both lengths. */
%typemap(jni) const float *a, const float *b "jfloatArray"
%typemap(jtype) const float *a, const float *b "float[]"
%typemap(jstype) const float *a, const float *b "float[]"
%typemap(javain) const float *a, const float *b "$javainput"
%typemap(in) const float *a, const float *b %{
    $1 = NULL;
    if ($input) {
        $1 = (float *)(*jenv)->GetFloatArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) const float *a, const float *b %{
    if ($1) (*jenv)->ReleaseFloatArrayElements(jenv, $input, (jfloat *)$1, JNI_ABORT);
%}
%typemap(jni) float *out "jfloatArray"
%typemap(jtype) float *out "float[]"
%typemap(jstype) float *out "float[]"
%typemap(javain) float *out "$javainput"
%typemap(in) float *out (float temp = 0) %{
    if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "out holder")) return $null;
    $1 = &temp;
%}
%typemap(argout) float *out {
    jfloat *p = (*jenv)->GetFloatArrayElements(jenv, $input, NULL);
    if (p) { p[0] = (jfloat)temp$argnum; (*jenv)->ReleaseFloatArrayElements(jenv, $input, p, 0); }
}

/* Several sequences: seq_ids int[] beside the int[][] token lists (the Java layer passes as many
 * ids as lists); a uint32_t output (n_past) as a long[1] holder. */
%apply (const int32_t *const *tokens, const size_t *n_tokens, size_t n) {
    (const int32_t *const *tokens, const size_t *n_tokens, size_t n_seqs) };
%typemap(jni) const int32_t *seq_ids "jintArray"
%typemap(jtype) const int32_t *seq_ids "int[]"
%typemap(jstype) const int32_t *seq_ids "int[]"
%typemap(javain) const int32_t *seq_ids "$javainput"
%typemap(in) const int32_t *seq_ids %{
    $1 = NULL;
    if ($input) {
        $1 = (int32_t *)(*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) const int32_t *seq_ids %{
    if ($1) (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, JNI_ABORT);
%}
EUROLLM_LONG_OUT(uint32_t, n_past)

/* Context state: byte[] buffers. */
%typemap(jni) (void *buf, size_t cap), (const void *buf, size_t size) "jbyteArray"
%typemap(jtype) (void *buf, size_t cap), (const void *buf, size_t size) "byte[]"
%typemap(jstype) (void *buf, size_t cap), (const void *buf, size_t size) "byte[]"
%typemap(javain) (void *buf, size_t cap), (const void *buf, size_t size) "$javainput"
%typemap(in) (void *buf, size_t cap), (const void *buf, size_t size) %{
    $1 = NULL; $2 = 0;
    if ($input) {
        $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
        $1 = ($1_ltype)(*jenv)->GetByteArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) (void *buf, size_t cap) %{
    if ($1) (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, 0);
%}
%typemap(freearg) (const void *buf, size_t size) %{
    if ($1) (*jenv)->ReleaseByteArrayElements(jenv, $input, (jbyte *)$1, JNI_ABORT);
%}
EUROLLM_LONG_OUT(size_t, size_out)

/* Batched steps: the generators as a long[] of handles; per-generator outputs into int[]s of the
 * same length (the Java layer allocates them). */
%typemap(jni) (eurollm_generator *const *gens, size_t n) "jlongArray"
%typemap(jtype) (eurollm_generator *const *gens, size_t n) "long[]"
%typemap(jstype) (eurollm_generator *const *gens, size_t n) "long[]"
%typemap(javain) (eurollm_generator *const *gens, size_t n) "$javainput"
%typemap(in) (eurollm_generator *const *gens, size_t n) {
    jsize i, count;
    jlong *h;
    $1 = NULL; $2 = 0;
    if (!$input) { eurollm_jni_npe(jenv, "gens"); return $null; }
    count = (*jenv)->GetArrayLength(jenv, $input);
    $1 = (eurollm_generator **)calloc((size_t)count + 1, sizeof(eurollm_generator *));
    if (!$1) { SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "gens"); return $null; }
    h = (*jenv)->GetLongArrayElements(jenv, $input, NULL);
    if (!h) { free($1); return $null; }
    for (i = 0; i < count; ++i) $1[i] = (eurollm_generator *)(intptr_t)h[i];
    (*jenv)->ReleaseLongArrayElements(jenv, $input, h, JNI_ABORT);
    $2 = (size_t)count;
}
%typemap(freearg) (eurollm_generator *const *gens, size_t n) %{ free((void *)$1); %}
%typemap(argout) (eurollm_generator *const *gens, size_t n) "" /* not the `TYPE **out` one */
%typemap(jni) int32_t *tokens, eurollm_status *statuses "jintArray"
%typemap(jtype) int32_t *tokens, eurollm_status *statuses "int[]"
%typemap(jstype) int32_t *tokens, eurollm_status *statuses "int[]"
%typemap(javain) int32_t *tokens, eurollm_status *statuses "$javainput"
%typemap(in) int32_t *tokens, eurollm_status *statuses %{
    $1 = NULL;
    if ($input) {
        $1 = ($1_ltype)(*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) int32_t *tokens, eurollm_status *statuses %{
    if ($1) (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, 0);
%}

/* ---- params structs: package-private, AutoCloseable proxies ---------------------------------- */
%define EUROLLM_PARAMS(CTYPE, JNAME)
%rename(JNAME) CTYPE;
%unignore CTYPE::CTYPE;
%unignore CTYPE::~CTYPE;
%typemap(javainterfaces) CTYPE, struct CTYPE "AutoCloseable"
%typemap(javacode) CTYPE, struct CTYPE %{
  @Override
  public void close() {
    delete();
  }
%}
%enddef
EUROLLM_PARAMS(eurollm_model_params, ModelParams)
EUROLLM_PARAMS(eurollm_context_params, ContextParams)
EUROLLM_PARAMS(eurollm_generator_params, GeneratorParams)
EUROLLM_PARAMS(eurollm_embed_params, EmbedParams)

/* ---- the allowlist: enums, constants, functions ---------------------------------------------- */
%rename(Status) eurollm_status;
%typemap(javacode) eurollm_status %{
  /** True for the negative (error) statuses. */
  public boolean isError() {
    return swigValue < 0;
  }
%}
%rename(LogLevel) eurollm_log_level;
%rename(DeviceKind) eurollm_device_kind;
%rename(ModelInfo) eurollm_model_info;
%rename(StopReason) eurollm_stop_reason;
%rename(Pooling) eurollm_pooling;
%rename(PER_TOKEN) EUROLLM_POOLING_NONE;  /* Pooling.NONE would collide with StopReason.NONE */
%rename(WeightType) eurollm_weight_type;
%rename(Precision) eurollm_precision;
/* Enum items share one SWIG namespace: AUTO is DeviceKind's and BF16 Precision's. */
%rename(AS_STORED) EUROLLM_WEIGHT_AUTO;
%rename(BFLOAT16) EUROLLM_WEIGHT_BF16;

%rename(VERSION_MAJOR) EUROLLM_VERSION_MAJOR;
%rename(VERSION_MINOR) EUROLLM_VERSION_MINOR;
%rename(VERSION_PATCH) EUROLLM_VERSION_PATCH;
%rename(VERSION_STRING) EUROLLM_VERSION_STRING;
%rename(MODEL_PARAMS_VERSION) EUROLLM_MODEL_PARAMS_VERSION;
%rename(CONTEXT_PARAMS_VERSION) EUROLLM_CONTEXT_PARAMS_VERSION;
%rename(GENERATOR_PARAMS_VERSION) EUROLLM_GENERATOR_PARAMS_VERSION;
%rename(TOKENIZE_ADD_BOS) EUROLLM_TOKENIZE_ADD_BOS;
%rename(TOKENIZE_PARSE_SPECIAL) EUROLLM_TOKENIZE_PARSE_SPECIAL;
%rename(TOKENIZE_MODEL_DEFAULT) EUROLLM_TOKENIZE_MODEL_DEFAULT;
/* "1u" is not Java: give the flag values as Java literals. */
%javaconstvalue("1") EUROLLM_TOKENIZE_ADD_BOS;
%javaconstvalue("2") EUROLLM_TOKENIZE_PARSE_SPECIAL;
%javaconstvalue("4") EUROLLM_TOKENIZE_MODEL_DEFAULT;

%rename(versionNumber) eurollm_version_number;
%rename(versionString) eurollm_version_string;
%rename(lastError) eurollm_last_error;
%rename(statusString) eurollm_status_string;
%rename(deviceCount) eurollm_device_count;
%rename(deviceName) eurollm_device_name;
EUROLLM_SIZED(eurollm_device_name)
%rename(deviceMemory) eurollm_device_memory;
EUROLLM_LONG_OUT(uint64_t, total_bytes)
EUROLLM_LONG_OUT(uint64_t, free_bytes)

%rename(modelParamsInit) eurollm_model_params_init;
%rename(modelLoad) eurollm_model_load;
%rename(modelFree) eurollm_model_free;
%rename(modelGetInfo) eurollm_model_get_info;
%rename(modelArchitecture) eurollm_model_architecture;
%rename(modelChatTemplate) eurollm_model_chat_template;
%rename(modelEosIds) eurollm_model_eos_ids;
%rename(modelSaveGguf) eurollm_model_save_gguf;
EUROLLM_SIZED(eurollm_model_eos_ids)

%rename(tokenize) eurollm_tokenize;
EUROLLM_SIZED(eurollm_tokenize)
%rename(detokenize) eurollm_detokenize;
EUROLLM_SIZED(eurollm_detokenize)
%rename(tokenToPiece) eurollm_token_to_piece;
EUROLLM_SIZED(eurollm_token_to_piece)

%rename(contextParamsInit) eurollm_context_params_init;
%rename(contextInit) eurollm_context_init;
%rename(contextFree) eurollm_context_free;
%rename(contextNCtx) eurollm_context_n_ctx;
%rename(contextNPast) eurollm_context_n_past;
%rename(contextReset) eurollm_context_reset;
%rename(contextDecode) eurollm_context_decode;
%rename(contextDecodeAll) eurollm_context_decode_all;
%rename(MAX_SEQUENCES) EUROLLM_MAX_SEQUENCES;
%rename(contextSeqNPast) eurollm_context_seq_n_past;
%rename(contextSeqRemove) eurollm_context_seq_remove;
%rename(contextSeqCopy) eurollm_context_seq_copy;
%rename(contextSeqKeep) eurollm_context_seq_keep;
%rename(contextDecodeSeqs) eurollm_context_decode_seqs;
%rename(contextSeqLogits) eurollm_context_seq_logits;
%rename(contextStateSave) eurollm_context_state_save;
EUROLLM_SIZED(eurollm_context_state_save)
%rename(contextStateLoad) eurollm_context_state_load;
%rename(contextStateSaveFile) eurollm_context_state_save_file;
%rename(contextStateLoadFile) eurollm_context_state_load_file;

%rename(generatorParamsInit) eurollm_generator_params_init;
%rename(generatorInit) eurollm_generator_init;
%rename(generatorFree) eurollm_generator_free;
%rename(generatorAddStopToken) eurollm_generator_add_stop_token;
%rename(generatorAddStopString) eurollm_generator_add_stop_string;
%rename(generatorAppendTokens) eurollm_generator_append_tokens;
%rename(generatorStep) eurollm_generator_step;
%rename(generatorTextDelta) eurollm_generator_text_delta;
%rename(generatorLogits) eurollm_generator_logits;
%rename(generatorStopReason) eurollm_generator_stop_reason;
%rename(generatorNGenerated) eurollm_generator_n_generated;
%rename(generatorStepBatch) eurollm_generator_step_batch;
%rename(generateText) eurollm_generate_text;
EUROLLM_SIZED(eurollm_generate_text)

%rename(EMBED_PARAMS_VERSION) EUROLLM_EMBED_PARAMS_VERSION;
%rename(embedParamsInit) eurollm_embed_params_init;
%rename(embedTexts) eurollm_embed_texts;
EUROLLM_SIZED(eurollm_embed_texts)
%rename(embedTokens) eurollm_embed_tokens;
EUROLLM_SIZED(eurollm_embed_tokens)
%rename(cosineSimilarity) eurollm_cosine_similarity;

/* Not bound (the Java layer offers them in Java instead):
 *   eurollm_log_set, eurollm_context_set_abort, eurollm_generator_set_callback take C function
 *   pointers; Generator streams tokens to a Java callback from its own step loop.
 * Everything else of eurollm.h is bound; a function added to the header stays ignored until it
 * gets its line here. */

/* ---- the header ------------------------------------------------------------------------------ */
#define __attribute__(x)
%include "eurollm.h"

/* The experimental header (training) when the library has one. */
#ifdef EUROLLM_HAVE_EXPERIMENTAL_H
%include "eurollm_experimental.i"
#endif
