// Checkpoints survive a crash: a child process is killed (SIGKILL) in the middle of saving a new
// checkpoint, at every stage of the save; the previous checkpoint must still load and resume
// exactly. A corrupted checkpoint (its files or its manifest) is rejected and the one before it is
// used. The manifest is standard Protobuf (checked with protoc --decode when protoc is installed).
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

#include "train_test_util.h"

namespace {

eurollm_trainer_params params() {
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.mode = EUROLLM_TRAIN_FULL;
    p.lr = 1e-3f;
    p.total_steps = 10;
    p.n_threads = 1;
    return p;
}

const std::vector<int32_t> kTokens = {1, 17, 200, 45, 99, 3, 150, 77, 77, 230, 12, 64};

void steps(eurollm_trainer *t, int n) {
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_step(t, kTokens.data(), kTokens.data(), 1, kTokens.size(), nullptr))
            << eurollm_last_error();
}

std::string model_dir() { return ttest::tiny_dir() + "/tiny_llama_mqa_bias_headdim_f32"; }

// A fresh run in `dir` with checkpoints after steps 1 and 2.
void save_steps_1_and_2(eurollm_model *model, const std::string &dir) {
    std::system(("rm -rf '" + dir + "'").c_str());
    auto t = ttest::make_trainer(model, params());
    for (int step = 1; step <= 2; ++step) {
        ASSERT_NO_FATAL_FAILURE(steps(t.get(), 1));
        ASSERT_EQ(EUROLLM_OK, eurollm_trainer_save_checkpoint(t.get(), dir.c_str())) << eurollm_last_error();
    }
}

}  // namespace

class KillDuringSave : public ::testing::TestWithParam<std::string> {};

TEST_P(KillDuringSave, PreviousCheckpointStaysLoadable) {
    const std::string dir = ttest::scratch_dir() + "/kill_" + GetParam();
    std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
    std::fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // The child: 2 steps, a good checkpoint, 1 more step, then a save that dies at the stage.
        auto model = ttest::load(model_dir());
        auto t = ttest::make_trainer(model.get(), params());
        for (int i = 0; i < 2; ++i)
            eurollm_trainer_step(t.get(), kTokens.data(), kTokens.data(), 1, kTokens.size(), nullptr);
        if (eurollm_trainer_save_checkpoint(t.get(), dir.c_str()) != EUROLLM_OK) _exit(3);
        eurollm_trainer_step(t.get(), kTokens.data(), kTokens.data(), 1, kTokens.size(), nullptr);
        setenv("EUROLLM__TEST_CRASH_AT", GetParam().c_str(), 1);
        eurollm_trainer_save_checkpoint(t.get(), dir.c_str());
        _exit(4);  // not reached: the save kills the process
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exit code " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    EXPECT_EQ(SIGKILL, WTERMSIG(status));

    // The reference: the same 2 steps in this process.
    auto model = ttest::load(model_dir());
    auto ref = ttest::make_trainer(model.get(), params());
    steps(ref.get(), 2);

    auto t = ttest::make_trainer(model.get(), params());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_checkpoint(t.get(), dir.c_str())) << eurollm_last_error();
    const int64_t at = eurollm_trainer_step_count(t.get());
    if (GetParam() == "before_latest") {
        // The new checkpoint was complete (renamed into place) before `latest` moved: either is valid.
        EXPECT_TRUE(at == 2 || at == 3) << at;
    } else {
        EXPECT_EQ(at, 2);
    }
    if (at == 2) {
        for (auto part : {EUROLLM_TENSOR_VALUE, EUROLLM_TENSOR_EXP_AVG, EUROLLM_TENSOR_EXP_AVG_SQ})
            EXPECT_EQ(ttest::snapshot(ref.get(), part), ttest::snapshot(t.get(), part));
        // And the resumed run continues exactly like the uninterrupted one.
        steps(ref.get(), 1);
        steps(t.get(), 1);
        EXPECT_EQ(ttest::snapshot(ref.get(), EUROLLM_TENSOR_VALUE), ttest::snapshot(t.get(), EUROLLM_TENSOR_VALUE));
    }
    // A later save cleans up the debris of the interrupted one.
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_save_checkpoint(t.get(), dir.c_str())) << eurollm_last_error();
    const std::string ls = dir + "/checkpoints";
    for (const char *debris : {"/step-00000003.tmp", "/step-00000004.tmp"})
        EXPECT_NE(0, access((ls + debris).c_str(), F_OK)) << debris;
}

INSTANTIATE_TEST_SUITE_P(Stages, KillDuringSave,
                         ::testing::Values("params", "optimizer", "manifest", "before_rename", "before_latest"));

TEST(Checkpoint, CorruptCheckpointFallsBackToThePreviousOne) {
    const std::string dir = ttest::scratch_dir() + "/corrupt";
    auto model = ttest::load(model_dir());
    ASSERT_NO_FATAL_FAILURE(save_steps_1_and_2(model.get(), dir));
    // Flip one byte of the newest weights: its SHA-256 no longer matches the manifest.
    const std::string f = dir + "/checkpoints/step-00000002/params.safetensors";
    std::string bytes = ttest::read_file(f);
    bytes[bytes.size() - 3] ^= 0x40;
    std::ofstream(f, std::ios::binary) << bytes;
    auto r = ttest::make_trainer(model.get(), params());
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_load_checkpoint(r.get(), dir.c_str())) << eurollm_last_error();
    EXPECT_EQ(eurollm_trainer_step_count(r.get()), 1);
    // No checkpoint at all is an IO error with a message.
    auto e = ttest::make_trainer(model.get(), params());
    EXPECT_EQ(EUROLLM_ERR_IO, eurollm_trainer_load_checkpoint(e.get(), (dir + "/nothing").c_str()));
    EXPECT_NE(std::string(eurollm_last_error()).find("no checkpoint"), std::string::npos);
}

// Random edits of the newest checkpoint's manifest. With manifest.sha256 beside it every edit is
// caught and loading falls back to the previous checkpoint; without it (checkpoints written before
// it existed) the Protobuf decoder and the checks after it see the damaged bytes and must refuse
// them or resume a state that steps. Never a crash. Seeded.
TEST(Checkpoint, CorruptedManifestsNeverCrash) {
    const std::string dir = ttest::scratch_dir() + "/corrupt_manifest";
    auto model = ttest::load(model_dir());
    ASSERT_NO_FATAL_FAILURE(save_steps_1_and_2(model.get(), dir));
    const std::string f = dir + "/checkpoints/step-00000002/manifest.pb", d = dir + "/checkpoints/step-00000002/manifest.sha256";
    const std::string good = ttest::read_file(f), digest = ttest::read_file(d);
    ASSERT_FALSE(good.empty());
    ASSERT_EQ(digest.size(), 65u);  // 64 hex digits and a newline
    std::mt19937_64 rng(20261206);
    int caught = 0, newest = 0, previous = 0, refused = 0;
    for (int it = 0; it < 80; ++it) {
        std::string bad = good;
        for (int e = 0, edits = 1 + static_cast<int>(rng() % 3); e < edits; ++e) {
            const size_t at = static_cast<size_t>(rng() % bad.size());
            bad[at] = rng() % 2 ? static_cast<char>(rng()) : static_cast<char>(bad[at] ^ (1 << (rng() % 8)));
        }
        if (bad == good) continue;  // an edit that wrote the byte already there
        const bool with_digest = it % 2 == 0;
        std::ofstream(f, std::ios::binary | std::ios::trunc) << bad;
        if (with_digest) std::ofstream(d, std::ios::binary | std::ios::trunc) << digest;
        else std::remove(d.c_str());
        auto r = ttest::make_trainer(model.get(), params());
        if (eurollm_trainer_load_checkpoint(r.get(), dir.c_str()) != EUROLLM_OK) {
            ++refused;
            EXPECT_STRNE(eurollm_last_error(), "") << "iteration " << it;
            continue;
        }
        if (eurollm_trainer_step_count(r.get()) == 1) {
            (with_digest ? caught : previous) += 1;
        } else {
            EXPECT_FALSE(with_digest) << "iteration " << it << ": a manifest that differs from its digest was used";
            ++newest;
        }
        const eurollm_status st = eurollm_trainer_step(r.get(), kTokens.data(), kTokens.data(), 1, kTokens.size(), nullptr);
        if (st != EUROLLM_OK) {
            EXPECT_STRNE(eurollm_last_error(), "") << "iteration " << it;
        }
    }
    std::ofstream(f, std::ios::binary | std::ios::trunc) << good;
    std::ofstream(d, std::ios::binary | std::ios::trunc) << digest;
    std::printf("[ fuzz     ] corrupted manifests: %d caught by manifest.sha256; without it %d fell back, %d were "
                "used, %d refused\n", caught, previous, newest, refused);
    EXPECT_GT(caught, 30);
}

TEST(Checkpoint, ManifestIsProtobufReadableByProtoc) {
    const std::string dir = ttest::scratch_dir() + "/manifest";
    std::system(("rm -rf '" + dir + "'").c_str());
    auto model = ttest::load(model_dir());
    auto t = ttest::make_trainer(model.get(), params());
    steps(t.get(), 3);
    eurollm_trainer_set_data_position(t.get(), 2, 40, 9);
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_save_checkpoint(t.get(), dir.c_str()));
    eurollm_trainer_params p;
    eurollm_trainer_params_init(&p, EUROLLM_TRAINER_PARAMS_VERSION);
    p.precision = EUROLLM_PRECISION_BF16;  // overwritten by the checkpoint's EXACT
    ASSERT_EQ(EUROLLM_OK, eurollm_trainer_params_from_checkpoint(dir.c_str(), &p));
    EXPECT_EQ(p.mode, EUROLLM_TRAIN_FULL);
    EXPECT_EQ(p.precision, EUROLLM_PRECISION_EXACT);
    EXPECT_EQ(p.total_steps, 10);
    EXPECT_FLOAT_EQ(p.lr, 1e-3f);
    if (std::system("command -v protoc > /dev/null 2>&1") != 0) GTEST_SKIP() << "protoc is not installed";
    const std::string out = dir + "/decoded.txt";
    const std::string cmd = "protoc --proto_path='" + std::string(EUROLLM_TRAIN_PROTO_DIR) +
                            "' --decode=eurollm.pb.Manifest eurollm.proto < '" + dir +
                            "/checkpoints/step-00000003/manifest.pb' > '" + out + "'";
    ASSERT_EQ(0, std::system(cmd.c_str()));
    const std::string text = ttest::read_file(out);
    EXPECT_NE(text.find("step: 3"), std::string::npos) << text;
    EXPECT_NE(text.find("mode: \"full\""), std::string::npos) << text;
    EXPECT_NE(text.find("precision: \"exact\""), std::string::npos) << text;
    EXPECT_NE(text.find("offset: 40"), std::string::npos) << text;
    EXPECT_NE(text.find("name: \"params.safetensors\""), std::string::npos) << text;
    EXPECT_NE(text.find("sha256: \""), std::string::npos) << text;
}
