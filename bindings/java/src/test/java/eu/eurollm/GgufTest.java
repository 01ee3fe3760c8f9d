package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GGUF export, quantize-at-load, the precision option and the f16 KV cache through the Java API. */
class GgufTest {
    static Path dir;
    static final GenerationOptions GREEDY = GenerationOptions.builder().temperature(0).maxTokens(24).build();

    @BeforeAll
    static void requireModel() {
        dir = TestSupport.requireStories();
    }

    @Test
    void quantizeAtLoadGeneratesWhatTheSavedFileGenerates(@TempDir Path tmp) throws EurollmException, IOException {
        Path file = tmp.resolve("stories-q8_0.gguf");
        try (Model model = Model.load(dir)) {
            model.saveGguf(file, WeightType.Q8_0);
        }
        assertEquals("GGUF", new String(Files.readAllBytes(file), 0, 4, java.nio.charset.StandardCharsets.US_ASCII));
        String fromFile;
        try (Model model = Model.load(file)) {
            fromFile = model.generate("Once upon a time", GREEDY);
        }
        try (Model model = Model.load(dir, Model.Options.builder().weightType(WeightType.Q8_0).build())) {
            assertEquals(fromFile, model.generate("Once upon a time", GREEDY));
        }
        assertFalse(fromFile.isEmpty());
    }

    @Test
    void bf16PrecisionIsAContextOption() throws EurollmException {
        try (Model model = Model.load(dir, Model.Options.builder().weightType(WeightType.BFLOAT16).build())) {
            Context.Options bf16 = Context.Options.builder().precision(Precision.BF16).build();
            assertEquals(model.generate("Once upon a time", GREEDY),
                         model.generate("Once upon a time", GREEDY, bf16, null));
        }
    }

    @Test
    void f16KvCacheIsAContextOption() throws EurollmException {
        try (Model model = Model.load(dir)) {
            Context.Options f16 = Context.Options.builder().kvType(WeightType.F16).build();
            assertEquals(model.generate("Once upon a time", GREEDY),
                         model.generate("Once upon a time", GREEDY, f16, null));
            Context.Options q8 = Context.Options.builder().kvType(WeightType.Q8_0).build();
            EurollmException e = assertThrows(EurollmException.class,
                                              () -> model.generate("Once upon a time", GREEDY, q8, null));
            assertEquals(Status.ERR_INVALID_ARGUMENT, e.status());
            assertThrows(NullPointerException.class, () -> Context.Options.builder().kvType(null));
        }
    }

    @Test
    void badPathsAreExceptions(@TempDir Path tmp) throws EurollmException {
        try (Model model = Model.load(dir)) {
            EurollmException e = assertThrows(EurollmException.class,
                                              () -> model.saveGguf(tmp.resolve("missing/x.gguf"), WeightType.Q4_0));
            assertEquals(Status.ERR_IO, e.status());
            assertThrows(NullPointerException.class, () -> model.saveGguf(tmp.resolve("x.gguf"), null));
        }
    }
}
