package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Many threads generating on one Model (each with its own context) give the serial results. */
class ConcurrencyTest {
    static final int THREADS = 8;
    static Model model;

    @BeforeAll
    static void load() throws EurollmException {
        Path dir = TestSupport.requireStories();
        model = Model.load(dir);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    record Job(String prompt, GenerationOptions options) {}

    static List<Job> jobs() {
        String[] prompts = {"Once upon a time", "The little dog", "Lily and Ben", "", "The sun was", "A big red ball"};
        List<Job> jobs = new ArrayList<>();
        for (int i = 0; i < 24; ++i) {
            GenerationOptions.Builder b = GenerationOptions.builder().maxTokens(40 + 10 * (i % 4));
            if (i % 3 == 0) b.temperature(0);
            else b.temperature(0.9f).topK(i % 2 == 0 ? 0 : 20).seed(1000 + i);
            jobs.add(new Job(prompts[i % prompts.length], b.build()));
        }
        return jobs;
    }

    static final Context.Options ONE_THREAD = Context.Options.builder().threads(1).size(256).build();

    @Test
    void parallelGenerationEqualsSerial() throws Exception {
        List<Job> jobs = jobs();
        List<String> serial = new ArrayList<>();
        for (Job j : jobs) serial.add(model.generate(j.prompt(), j.options(), ONE_THREAD, null));

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            for (int round = 0; round < 2; ++round) {
                CountDownLatch go = new CountDownLatch(1);
                List<Future<String>> results = new ArrayList<>();
                for (Job j : jobs) {
                    results.add(pool.submit(() -> {
                        go.await();
                        return model.generate(j.prompt(), j.options(), ONE_THREAD, null);
                    }));
                }
                go.countDown();
                for (int i = 0; i < jobs.size(); ++i)
                    assertEquals(serial.get(i), results.get(i).get(5, TimeUnit.MINUTES), "job " + i + ": " + jobs.get(i));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void threadsWithLongLivedContextsAndStreams() throws Exception {
        List<Job> jobs = jobs();
        List<String> serial = new ArrayList<>();
        for (Job j : jobs) serial.add(model.generate(j.prompt(), j.options(), ONE_THREAD, null));

        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try {
            List<Future<List<String>>> perThread = new ArrayList<>();
            for (int t = 0; t < THREADS; ++t) {
                final int first = t;
                Callable<List<String>> work = () -> {
                    List<String> out = new ArrayList<>();
                    try (Context ctx = model.newContext(ONE_THREAD)) {
                        for (int i = first; i < jobs.size(); i += THREADS) {
                            Job j = jobs.get(i);
                            if (i % 2 == 0) {
                                out.add(ctx.generate(j.prompt(), j.options()));
                            } else {
                                StringBuilder sb = new StringBuilder();
                                try (TextStream s = ctx.generateStream(j.prompt(), j.options())) {
                                    s.forEachRemaining(sb::append);
                                }
                                out.add(sb.toString());
                            }
                            // the shared model's tokenizer is used concurrently as well
                            int[] ids = model.tokenize(j.prompt());
                            assertEquals(j.prompt(), model.detokenize(ids));
                        }
                    }
                    return out;
                };
                perThread.add(pool.submit(work));
            }
            for (int t = 0; t < THREADS; ++t) {
                List<String> got = perThread.get(t).get(5, TimeUnit.MINUTES);
                int k = 0;
                for (int i = t; i < jobs.size(); i += THREADS) assertEquals(serial.get(i), got.get(k++), "job " + i);
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
