/*
 * eurollm_experimental.i -- the training API of capi/eurollm_experimental.h (no ABI promise).
 * Included by eurollm.i when that header exists (CMake passes -DEUROLLM_HAVE_EXPERIMENTAL_H); the
 * Java classes over it live in src/experimental/java and are compiled only then.
 */

EUROLLM_HANDLE(eurollm_trainer)
EUROLLM_PARAMS(eurollm_trainer_params, TrainerParams)
/* The step result: a package-private proxy that Java allocates and the C API fills. */
%rename(TrainResultNative) eurollm_train_result;
%unignore eurollm_train_result::eurollm_train_result;
%unignore eurollm_train_result::~eurollm_train_result;
%typemap(javainterfaces) eurollm_train_result, struct eurollm_train_result "AutoCloseable"
%typemap(javacode) eurollm_train_result, struct eurollm_train_result %{
  @Override
  public void close() {
    delete();
  }
%}

%rename(TrainMode) eurollm_train_mode;
%rename(LrSchedule) eurollm_lr_schedule;
%rename(TensorPart) eurollm_tensor_part;

/* Token and label batches: int[] (the Java Trainer passes exactly n_seqs * seq_len of each). */
%typemap(jni) const int32_t *tokens, const int32_t *labels "jintArray"
%typemap(jtype) const int32_t *tokens, const int32_t *labels "int[]"
%typemap(jstype) const int32_t *tokens, const int32_t *labels "int[]"
%typemap(javain) const int32_t *tokens, const int32_t *labels "$javainput"
%typemap(in) const int32_t *tokens, const int32_t *labels %{
    $1 = NULL;
    if ($input) {
        $1 = (int32_t *)(*jenv)->GetIntArrayElements(jenv, $input, NULL);
        if (!$1) return $null;
    }
%}
%typemap(freearg) const int32_t *tokens, const int32_t *labels %{
    if ($1) (*jenv)->ReleaseIntArrayElements(jenv, $input, (jint *)$1, JNI_ABORT);
%}
%apply (const int32_t *tokens, size_t n_tokens) { (const int32_t *tokens, size_t n) };
%apply const char *path { const char *dir, const char *name, const char *base_dir, const char *adapter_dir,
                          const char *out_dir };

/* One float out (loss): float[1] holder; null allowed where the C API allows NULL. */
%typemap(jni) float *loss "jfloatArray"
%typemap(jtype) float *loss "float[]"
%typemap(jstype) float *loss "float[]"
%typemap(javain) float *loss "$javainput"
%typemap(in) float *loss (float temp = 0) %{
    $1 = NULL;
    if ($input) {
        if (!eurollm_jni_holder_ok(jenv, (jarray)$input, "loss holder")) return $null;
        $1 = &temp;
    }
%}
%typemap(argout) float *loss {
    if ($input) {
        jfloat *p = (*jenv)->GetFloatArrayElements(jenv, $input, NULL);
        if (p) { p[0] = (jfloat)temp$argnum; (*jenv)->ReleaseFloatArrayElements(jenv, $input, p, 0); }
    }
}
EUROLLM_LONG_OUT(int64_t, loss_tokens)
EUROLLM_LONG_OUT(int64_t, n_elements)
EUROLLM_LONG_OUT(size_t, n_tensors)
EUROLLM_LONG_OUT(uint64_t, epoch)
EUROLLM_LONG_OUT(uint64_t, offset)
EUROLLM_LONG_OUT(uint64_t, seed)

%rename(LORA_Q) EUROLLM_LORA_Q;
%rename(LORA_K) EUROLLM_LORA_K;
%rename(LORA_V) EUROLLM_LORA_V;
%rename(LORA_O) EUROLLM_LORA_O;
%rename(LORA_GATE) EUROLLM_LORA_GATE;
%rename(LORA_UP) EUROLLM_LORA_UP;
%rename(LORA_DOWN) EUROLLM_LORA_DOWN;
%rename(LORA_ALL) EUROLLM_LORA_ALL;
%javaconstvalue("1") EUROLLM_LORA_Q;
%javaconstvalue("2") EUROLLM_LORA_K;
%javaconstvalue("4") EUROLLM_LORA_V;
%javaconstvalue("8") EUROLLM_LORA_O;
%javaconstvalue("16") EUROLLM_LORA_GATE;
%javaconstvalue("32") EUROLLM_LORA_UP;
%javaconstvalue("64") EUROLLM_LORA_DOWN;
%javaconstvalue("127") EUROLLM_LORA_ALL;
%rename(TRAINER_PARAMS_VERSION) EUROLLM_TRAINER_PARAMS_VERSION;

%rename(trainerParamsInit) eurollm_trainer_params_init;
%rename(trainerCreate) eurollm_trainer_create;
%rename(trainerFree) eurollm_trainer_free;
%rename(trainerStep) eurollm_trainer_step;
%rename(trainerEval) eurollm_trainer_eval;
%rename(trainerComputeGradients) eurollm_trainer_compute_gradients;
%rename(trainerLogits) eurollm_trainer_logits;
%rename(trainerNTensors) eurollm_trainer_n_tensors;
%rename(trainerTensorName) eurollm_trainer_tensor_name;
%rename(trainerGetTensor) eurollm_trainer_get_tensor;
EUROLLM_SIZED(eurollm_trainer_get_tensor)
%rename(trainerStepCount) eurollm_trainer_step_count;
%rename(trainerSetDataPosition) eurollm_trainer_set_data_position;
%rename(trainerGetDataPosition) eurollm_trainer_get_data_position;
%rename(trainerSaveCheckpoint) eurollm_trainer_save_checkpoint;
%rename(trainerLoadCheckpoint) eurollm_trainer_load_checkpoint;
%rename(trainerExportPeft) eurollm_trainer_export_peft;
%rename(trainerLoadPeft) eurollm_trainer_load_peft;
%rename(trainerSaveModel) eurollm_trainer_save_model;
%rename(adapterMerge) eurollm_adapter_merge;
%rename(modelLoadWithAdapter) eurollm_model_load_with_adapter;
/* Not bound: eurollm_trainer_set_progress (a C function pointer); the Java caller owns the loop. */

%{
#define EUROLLM_EXPERIMENTAL 1
#include "eurollm_experimental.h"
%}
#define EUROLLM_EXPERIMENTAL 1
%include "eurollm_experimental.h"
