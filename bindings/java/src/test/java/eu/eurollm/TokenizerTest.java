package eu.eurollm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Tokenizer and model properties from Java equal the C API's (the reference program). */
class TokenizerTest {
    static Path dir;
    static Model model;

    @BeforeAll
    static void load() throws EurollmException {
        dir = TestSupport.requireStories();
        model = Model.load(dir);
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static Stream<String> texts() {
        return Stream.of("Once upon a time", "", " ", "Hello, world!\n\tTabs and\nnew lines.",
                         "Ünïcödé: façade, naïve, Œuvre – “quotes” — ½ € 日本語 🙂👍🏽",
                         "<s> not special </s>", "a".repeat(1000), "The cat sat on the mat. The end.");
    }

    private static int[] referenceIds(String text, int flags) {
        String out = TestSupport.reference("tokenize", dir.toString(), TestSupport.hex(text), Integer.toString(flags)).strip();
        return out.isEmpty() ? new int[0] : Arrays.stream(out.split(" ")).mapToInt(Integer::parseInt).toArray();
    }

    @ParameterizedTest
    @MethodSource("texts")
    void tokenizeMatchesC(String text) throws EurollmException {
        for (int flags : new int[] {0, Tokenizer.ADD_BOS, Tokenizer.PARSE_SPECIAL, Tokenizer.MODEL_DEFAULT,
                                    Tokenizer.ADD_BOS | Tokenizer.PARSE_SPECIAL}) {
            assertArrayEquals(referenceIds(text, flags), model.tokenize(text, flags), "flags " + flags);
        }
        assertArrayEquals(model.tokenize(text, Tokenizer.MODEL_DEFAULT), model.tokenize(text));
    }

    @ParameterizedTest
    @MethodSource("texts")
    void detokenizeMatchesC(String text) throws EurollmException {
        int[] ids = model.tokenize(text, 0);
        List<String> args = new ArrayList<>(List.of("detokenize", dir.toString()));
        for (int id : ids) args.add(Integer.toString(id));
        String expected = TestSupport.reference(args.toArray(new String[0]));
        assertEquals(expected, model.detokenize(ids));
        if (!text.isBlank()) assertEquals(text, model.detokenize(ids), "round trip");
    }

    @Test
    void everyPieceMatchesC() throws EurollmException {
        int n = model.vocabSize();
        List<String> args = new ArrayList<>(List.of("pieces", dir.toString()));
        IntStream.range(0, n).forEach(i -> args.add(Integer.toString(i)));
        String[] lines = TestSupport.reference(args.toArray(new String[0])).split("\n", -1);
        assertTrue(lines.length >= n);
        for (int i = 0; i < n; ++i) {
            String expected = new String(HexFormat.of().parseHex(lines[i]), java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(expected, model.tokenToPiece(i), "piece of " + i);
        }
    }

    @Test
    void modelInfoMatchesC() throws EurollmException {
        Map<String, String> ref = TestSupport.reference("info", dir.toString()).lines()
            .map(l -> l.split("=", 2)).collect(Collectors.toMap(kv -> kv[0], kv -> kv[1]));
        String[][] keys = {{"n_vocab", "N_VOCAB"}, {"n_embd", "N_EMBD"}, {"n_layer", "N_LAYER"}, {"n_head", "N_HEAD"},
                           {"n_head_kv", "N_HEAD_KV"}, {"head_dim", "HEAD_DIM"}, {"n_ff", "N_FF"},
                           {"n_ctx_train", "N_CTX_TRAIN"}, {"bos_id", "BOS_ID"}, {"eos_id", "EOS_ID"},
                           {"pad_id", "PAD_ID"}, {"n_params", "N_PARAMS"}, {"sliding_window", "SLIDING_WINDOW"},
                           {"tied_embeddings", "TIED_EMBEDDINGS"}};
        for (String[] k : keys) {
            assertEquals(Long.parseLong(ref.get(k[0])), model.info(ModelInfo.valueOf(k[1])), k[0]);
        }
        assertEquals(Integer.parseInt(ref.get("n_vocab")), model.vocabSize());
        assertEquals(ref.get("architecture"), model.architecture());
        assertEquals("1".equals(ref.get("has_chat_template")), model.chatTemplate().isPresent());
        assertEquals(ref.get("eos_ids"), Arrays.stream(model.eosIds()).mapToObj(Integer::toString).collect(Collectors.joining(",")));
        assertEquals(ref.get("version"), Eurollm.version());
        assertEquals(Eurollm.bindingVersion(), Eurollm.version());
        assertEquals(1, Eurollm.deviceCount(DeviceKind.CPU));
        assertEquals("cpu", Eurollm.deviceName(DeviceKind.CPU, 0));
        assertArrayEquals(new long[] {0, 0}, Eurollm.deviceMemory(DeviceKind.CPU, 0));
        int nCuda = Eurollm.deviceCount(DeviceKind.CUDA);
        EurollmException e = assertThrows(EurollmException.class, () -> Eurollm.deviceName(DeviceKind.CUDA, nCuda));
        assertEquals(Status.ERR_INVALID_ARGUMENT, e.status());
        assertThrows(EurollmException.class, () -> Eurollm.deviceMemory(DeviceKind.CPU, 1));
    }

    @Test
    void badIdsAndFlagsThrow() {
        EurollmException e = assertThrows(EurollmException.class, () -> model.detokenize(new int[] {1, 9999}));
        assertEquals(Status.ERR_INVALID_ARGUMENT, e.status());
        assertEquals(-2, e.code());
        // the message is the C API's own (eurollm_last_error)
        TestSupport.Run r = TestSupport.runReference("detokenize", dir.toString(), "1", "9999");
        assertEquals(1, r.exitCode());
        assertTrue(r.stderr().contains(e.getMessage()), r.stderr() + " vs " + e.getMessage());

        assertEquals(Status.ERR_INVALID_ARGUMENT,
                     assertThrows(EurollmException.class, () -> model.detokenize(new int[] {-1})).status());
        assertEquals(Status.ERR_INVALID_ARGUMENT,
                     assertThrows(EurollmException.class, () -> model.tokenToPiece(model.vocabSize())).status());
        assertEquals(Status.ERR_INVALID_ARGUMENT,
                     assertThrows(EurollmException.class, () -> model.tokenize("x", 64)).status());
    }

    @Test
    void emptyInputs() throws EurollmException {
        assertEquals(0, model.tokenize("", 0).length);
        assertArrayEquals(new int[] {1}, model.tokenize("", Tokenizer.ADD_BOS));
        assertEquals("", model.detokenize(new int[0]));
        assertEquals("", model.detokenize(new int[] {1, 2}), "control tokens give no text");
    }
}
