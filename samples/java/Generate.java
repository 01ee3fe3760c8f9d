// Generate.java -- stream a completion from a model with the libeurollm Java binding.
//
// Build the binding once (bindings/java):   mvn -q package -DskipTests
// Then run this file directly (Java 17 single-file launch):
//
//   java -cp bindings/java/target/eurollm-0.1.0.jar samples/java/Generate.java \
//        ../shared/models/stories260K "Once upon a time" -n 60 --temp 0
//
// Options: -n N (tokens, default 128), --temp T (0 = greedy, default 0.8), --seed S, --stop TEXT.

import eu.eurollm.EurollmException;
import eu.eurollm.GenerationOptions;
import eu.eurollm.Model;
import java.nio.file.Path;

public class Generate {
    public static void main(String[] args) throws EurollmException {
        if (args.length < 1) {
            System.err.println("usage: Generate MODEL_DIR [PROMPT] [-n N] [--temp T] [--seed S] [--stop TEXT]");
            System.exit(2);
        }
        Path modelDir = Path.of(args[0]);
        String prompt = "";
        GenerationOptions.Builder options = GenerationOptions.builder().maxTokens(128);
        for (int i = 1; i < args.length; ++i) {
            switch (args[i]) {
                case "-n" -> options.maxTokens(Integer.parseInt(args[++i]));
                case "--temp" -> options.temperature(Float.parseFloat(args[++i]));
                case "--seed" -> options.seed(Long.parseUnsignedLong(args[++i]));
                case "--stop" -> options.stopString(args[++i]);
                default -> prompt = args[i];
            }
        }
        try (Model model = Model.load(modelDir)) {
            // Stream each piece of text as soon as it is final.
            model.generate(prompt, options.build(), (token, text) -> {
                System.out.print(text);
                System.out.flush();
                return true;
            });
            System.out.println();
        } catch (EurollmException e) {
            System.err.println("eurollm: " + e.status() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
