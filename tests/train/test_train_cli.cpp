// The CLI: `eurollm train` with --stop-at / --resume reproduces an uninterrupted run (the JSON
// losses print 9 significant digits, enough to round-trip a float), a run killed with SIGKILL at a
// random moment (possibly mid-checkpoint) resumes to the end, export-peft and merge work.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

#include "train_test_util.h"

namespace {

std::string cli() { return ttest::env_or("EUROLLM_CLI", EUROLLM_CLI_PATH); }

int run(const std::string &cmd) { return std::system(cmd.c_str()); }

std::vector<nlohmann::json> json_lines(const std::string &path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty() && line[0] == '{') out.push_back(nlohmann::json::parse(line));
    return out;
}

std::string train_cmd(const std::string &out, const std::string &extra, int steps = 8) {
    return cli() + " train '" + ttest::stories_dir() + "' --data '" + ttest::data_dir() +
           "/stories_train.jsonl' --eval-data '" + ttest::data_dir() + "/stories_heldout.jsonl' --out '" + out +
           "' --steps " + std::to_string(steps) + " --batch 4 --seq-len 64 --seed 5 --threads 2 --save-every 2 " + extra;
}

}  // namespace

TEST(Cli, StopAtThenResumeEqualsOneRun) {
    const std::string dir = ttest::scratch_dir() + "/cli";
    run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
    ASSERT_EQ(0, run(train_cmd(dir + "/a", "--full --lr 1e-3 --log-format json") + " > '" + dir + "/a.jsonl'"));
    ASSERT_EQ(0, run(train_cmd(dir + "/b", "--full --lr 1e-3 --log-format json --stop-at 3") + " > '" + dir + "/b1.jsonl'"));
    ASSERT_EQ(0, run(train_cmd(dir + "/b", "--full --lr 1e-3 --log-format json --resume") + " > '" + dir + "/b2.jsonl'"));
    auto a = json_lines(dir + "/a.jsonl"), b = json_lines(dir + "/b1.jsonl"), b2 = json_lines(dir + "/b2.jsonl");
    b.insert(b.end(), b2.begin(), b2.end());
    std::vector<std::string> la, lb;
    for (const auto &j : a)
        if (j.contains("loss")) {
            for (const char *k : {"step", "loss", "lr", "grad_norm", "tokens_per_s"}) EXPECT_TRUE(j.contains(k)) << k;
            la.push_back(j["loss"].dump() + " " + j["lr"].dump() + " " + j["grad_norm"].dump());
        }
    for (const auto &j : b)
        if (j.contains("loss")) lb.push_back(j["loss"].dump() + " " + j["lr"].dump() + " " + j["grad_norm"].dump());
    ASSERT_EQ(la.size(), 8u);
    EXPECT_EQ(la, lb);
    EXPECT_TRUE(a.back().contains("eval_loss"));
    EXPECT_EQ(0, access((dir + "/a/model/model.safetensors").c_str(), F_OK));  // full: the model at the end
}

// The checkpoint records the run's precision: a BF16 run resumed without --precision continues in
// BF16 (an EXACT continuation would give other losses, as the EXACT run shows).
TEST(Cli, ResumeKeepsTheRunsPrecision) {
    const std::string dir = ttest::scratch_dir() + "/cli_precision";
    run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
    const std::string lora = "--lora r=4,alpha=8,targets=q,v --lr 1e-2 --log-format json";
    ASSERT_EQ(0, run(train_cmd(dir + "/a", lora + " --precision bf16", 6) + " > '" + dir + "/a.jsonl'"));
    ASSERT_EQ(0, run(train_cmd(dir + "/e", lora, 6) + " > '" + dir + "/e.jsonl'"));
    ASSERT_EQ(0, run(train_cmd(dir + "/b", lora + " --precision bf16 --stop-at 3", 6) + " > '" + dir + "/b1.jsonl'"));
    ASSERT_EQ(0, run(train_cmd(dir + "/b", lora + " --resume", 6) + " > '" + dir + "/b2.jsonl'"));
    auto losses = [](const std::vector<nlohmann::json> &lines) {
        std::vector<std::string> out;
        for (const auto &j : lines)
            if (j.contains("loss")) out.push_back(j["loss"].dump());
        return out;
    };
    auto b = json_lines(dir + "/b1.jsonl"), b2 = json_lines(dir + "/b2.jsonl");
    b.insert(b.end(), b2.begin(), b2.end());
    const auto la = losses(json_lines(dir + "/a.jsonl")), le = losses(json_lines(dir + "/e.jsonl"));
    ASSERT_EQ(la.size(), 6u);
    EXPECT_NE(std::vector<std::string>(la.begin() + 3, la.end()), std::vector<std::string>(le.begin() + 3, le.end()));
    EXPECT_EQ(la, losses(b));
}

TEST(Cli, KilledRunResumesToTheEnd) {
    const std::string dir = ttest::scratch_dir() + "/cli_kill";
    run("rm -rf '" + dir + "' && mkdir -p '" + dir + "'");
    const std::string cmd = train_cmd(dir + "/run", "--lora r=4,alpha=8,targets=q,k,v,o --lr 5e-3 --save-every 1 --log-format json", 200);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // `exec` makes the CLI itself this pid, so the kill below hits it.
        execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    // Once it has saved a checkpoint or two, kill it wherever it is (possibly inside a save). Waiting
    // for the file rather than a fixed time keeps the test meaningful on fast and slow machines.
    const std::string latest = dir + "/run/checkpoints/latest";
    for (int i = 0; i < 3000 && (access(latest.c_str(), F_OK) != 0 || ttest::read_file(latest) < "step-00000002"); ++i)
        usleep(10 * 1000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_EQ(0, run(cmd + " --resume > '" + dir + "/resumed.jsonl' 2> '" + dir + "/resumed.err'"))
        << ttest::read_file(dir + "/resumed.err");
    const auto lines = json_lines(dir + "/resumed.jsonl");
    ASSERT_FALSE(lines.empty());
    int64_t first = -1, last = -1;
    for (const auto &j : lines)
        if (j.contains("loss")) {
            if (first < 0) first = j["step"];
            last = j["step"];
        }
    std::printf("killed run resumed at step %lld\n", static_cast<long long>(first));
    EXPECT_GT(first, 1);  // it resumed from a checkpoint of the killed run
    EXPECT_EQ(last, 200);
    EXPECT_EQ(ttest::read_file(dir + "/run/checkpoints/latest"), "step-00000200\n");
    EXPECT_EQ(0, access((dir + "/run/adapter/adapter_model.safetensors").c_str(), F_OK));

    // export-peft from the checkpoint, then merge it into the base.
    ASSERT_EQ(0, run(cli() + " export-peft '" + ttest::stories_dir() + "' --checkpoint '" + dir + "/run' --out '" + dir +
                     "/exported' 2>/dev/null"));
    EXPECT_EQ(ttest::read_file(dir + "/run/adapter/adapter_model.safetensors"),
              ttest::read_file(dir + "/exported/adapter_model.safetensors"));
    ASSERT_EQ(0, run(cli() + " merge '" + ttest::stories_dir() + "' --adapter '" + dir + "/exported' --out '" + dir +
                     "/merged' 2>/dev/null"));
    ASSERT_EQ(0, run(cli() + " generate '" + dir + "/merged' -p 'Once upon a time' -n 8 --temp 0 > /dev/null 2>&1"));
}
