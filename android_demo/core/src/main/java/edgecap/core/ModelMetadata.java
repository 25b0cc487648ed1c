package edgecap.core;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipInputStream;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * The edgecap metadata packed in a {@code .tflite} file, read as {@code edgecap/runtime/metadata.py}
 * reads it: the flatbuffer is followed by a zip archive holding {@code edgecap.json}; the
 * flatbuffer's SHA-256 digest (format 3) is checked, and a file not marked verified is refused.
 *
 * <p>Uses {@code org.json}, which Android ships (on the JVM: Debian's {@code libandroid-json-java}).
 */
public final class ModelMetadata {
    /** The newest metadata format this core reads. */
    public static final int FORMAT_VERSION = 3;
    /** Bounds checked before anything large is read, as {@code edgecap/runtime/metadata.py} checks them. */
    static final int MAX_ENTRY_BYTES = 64 << 20, MAX_ENTRIES = 16, MAX_VOCABULARY = 1_000_000, MAX_DEPTH = 64;
    /** Bounds of a declared tensor's row ({@code edgecap/runtime/contract.py}). */
    static final int MAX_DIMENSION = 65536, MAX_VALUES = 1 << 24;

    public final String name, version, architecture, quantization, task;
    public final List<String> vocabulary;
    public final int imageSize, padId, startId, endId, unkId, maxLength, beamSize, noRepeatNGramSize, formatVersion;
    public final double lengthPenalty;
    /** The step contract's tensors in declaration order (state and memory). */
    public final List<TensorDecl> tensors;
    /** The attention output's name, or null when the model has none. */
    public final String attentionOutput;
    /** Values per row of the attention output (e.g. 49 for a 7×7 grid); 0 without one. */
    public final int attentionSize;
    /** The attention output is a map over a square grid of image locations (not over items). */
    public final boolean attentionOverGrid;
    /**
     * The contract's items (semantic attention's top-k attributes): the {@code encode} outputs
     * holding their vocabulary ids ({@code int (1, itemCount)}) and scores ({@code float (1,
     * itemCount)}); null and 0 when the model declares none.
     */
    public final String itemIdsOutput, itemScoresOutput;
    public final int itemCount;
    /**
     * The contract's tags (a tag-conditioned model): the memory tensors the app fills from its
     * tagger ({@link TagInputs}), ids ({@code int (1, tagCount)}) and scores ({@code float (1,
     * tagCount)}); null and 0 when the model declares none. Tags scored below {@code tagMinScore}
     * are left out; {@code tagger} names the built-in tagger whose words the model learned.
     */
    public final String tagIdsInput, tagScoresInput, tagger;
    public final int tagCount;
    public final double tagMinScore;
    /** Where the flatbuffer ends (the interpreter needs only {@code data[0, flatbufferSize)}). */
    public final int flatbufferSize;

    /** One state or memory tensor of the step contract ({@code edgecap.runtime.contract.TensorDecl}). */
    public static final class TensorDecl {
        public final String name, role;
        public final int[] shape;
        public final boolean perBeam;

        TensorDecl(String name, int[] shape, String role, boolean perBeam) {
            this.name = name;
            this.shape = shape;
            this.role = role;
            this.perBeam = perBeam;
        }

        public boolean isState() {
            return "state".equals(role);
        }

        /** Values per row: the product of the shape. */
        public int size() {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    private ModelMetadata(JSONObject j, int flatbufferSize, String source) throws JSONException, ModelFileException {
        name = j.getString("name");
        version = j.getString("version");
        architecture = j.getString("architecture");
        quantization = j.getString("quantization");
        task = j.optString("task", "captioning");
        if (!task.equals("captioning"))
            throw new ModelFileException(source + ": a " + task + " model (" + architecture + "), not a captioner");
        JSONArray words = j.getJSONArray("vocabulary");
        if (words.length() < 4 || words.length() > MAX_VOCABULARY)
            throw field(source, "vocabulary", "a list of 4.." + MAX_VOCABULARY + " words", words.length() + " words");
        List<String> vocab = new ArrayList<>();
        for (int i = 0; i < words.length(); i++) {
            Object w = words.get(i);
            if (!(w instanceof String) || ((String) w).isEmpty() || hasSpace((String) w))
                throw new ModelFileException(source + ": metadata field 'vocabulary' must hold non-empty words without spaces or line breaks (word " + i + ")");
            vocab.add((String) w);
        }
        vocabulary = Collections.unmodifiableList(vocab);
        imageSize = intIn(j, "image_size", 8, 4096, source);
        padId = intIn(j, "pad_id", 0, vocab.size() - 1, source);
        startId = intIn(j, "start_id", 0, vocab.size() - 1, source);
        endId = intIn(j, "end_id", 0, vocab.size() - 1, source);
        unkId = intIn(j, "unk_id", 0, vocab.size() - 1, source);
        maxLength = intIn(j, "max_length", 1, 1000, source);
        beamSize = intIn(j, "beam_size", 1, 100, source);
        Object lp = j.get("length_penalty");
        lengthPenalty = lp instanceof Number ? ((Number) lp).doubleValue() : Double.NaN;
        if (!(lengthPenalty >= -10 && lengthPenalty <= 10)) throw field(source, "length_penalty", "a number in -10..10", lp);
        noRepeatNGramSize = intIn(j, "no_repeat_ngram_size", 0, 100, source);
        if (noRepeatNGramSize == 1) throw field(source, "no_repeat_ngram_size", "0 or an integer in 2..100", 1);
        formatVersion = intIn(j, "format_version", 0, Integer.MAX_VALUE, source);
        if (new java.util.HashSet<>(java.util.Arrays.asList(padId, startId, endId, unkId)).size() < 4)
            throw new ModelFileException(source + ": metadata fields pad_id, start_id, end_id, unk_id must be four different words, got [" + padId + ", " + startId + ", " + endId + ", " + unkId + "]");
        if (!j.has("contract") || j.isNull("contract"))
            throw new ModelFileException(source + ": metadata format " + formatVersion + " has no step contract; re-export the model with a current edgecap");
        JSONObject contract = j.getJSONObject("contract");
        JSONArray ts = contract.getJSONArray("tensors");
        List<TensorDecl> list = new ArrayList<>();
        for (int i = 0; i < ts.length(); i++) {
            JSONObject t = ts.getJSONObject(i);
            JSONArray s = t.getJSONArray("shape");
            int[] shape = new int[s.length()];
            long values = 1;
            for (int k = 0; k < shape.length; k++) {
                Object d = s.get(k);
                long v = d instanceof Integer || d instanceof Long ? ((Number) d).longValue() : -1;
                if (v < 1 || v > MAX_DIMENSION || (values *= v) > MAX_VALUES)
                    throw new ModelFileException(source + ": tensor " + t.getString("name") + ": shape " + s + " must have dimensions in 1.." + MAX_DIMENSION + " and at most " + MAX_VALUES + " values");
                shape[k] = (int) v;
            }
            String role = t.getString("role");
            if (!role.equals("state") && !role.equals("memory")) throw new ModelFileException(source + ": tensor " + t.getString("name") + " has role " + role + " (state or memory expected)");
            list.add(new TensorDecl(t.getString("name"), shape, role, t.optBoolean("per_beam", false)));
        }
        tensors = Collections.unmodifiableList(list);
        JSONObject attention = contract.optJSONObject("attention");
        attentionOutput = attention == null ? null : attention.getString("output");
        int n = attention == null ? 0 : 1;
        if (attention != null) {
            JSONArray shape = attention.getJSONArray("shape");
            for (int k = 0; k < shape.length(); k++) n *= shape.getInt(k);
        }
        attentionSize = n;
        attentionOverGrid = attention != null && attention.optString("over", "grid").equals("grid");
        JSONObject items = contract.optJSONObject("items");
        itemIdsOutput = items == null ? null : items.getString("ids");
        itemScoresOutput = items == null ? null : items.getString("scores");
        itemCount = items == null ? 0 : items.getInt("size");
        JSONObject tags = contract.optJSONObject("tags");
        tagIdsInput = tags == null ? null : tags.getString("ids");
        tagScoresInput = tags == null ? null : tags.getString("scores");
        tagCount = tags == null ? 0 : tags.getInt("size");
        tagMinScore = tags == null ? 0.0 : tags.optDouble("min_score", 0.0);
        tagger = tags == null ? null : tags.optString("tagger", "");
        if (tags != null && (tagCount < 1 || !(tagMinScore >= 0.0 && tagMinScore <= 1.0) || tagIdsInput.equals(tagScoresInput)))
            throw new ModelFileException(source + ": the contract's tags are malformed (size " + tagCount + ", min_score " + tagMinScore + ")");
        this.flatbufferSize = flatbufferSize;
    }

    /** An integer field in {@code lo..hi}: a fraction, a string or an out-of-range number is refused, never cast. */
    private static int intIn(JSONObject j, String key, int lo, int hi, String source) throws JSONException, ModelFileException {
        Object v = j.get(key);
        if ((v instanceof Integer || v instanceof Long) && ((Number) v).longValue() >= lo && ((Number) v).longValue() <= hi)
            return ((Number) v).intValue();
        throw field(source, key, "an integer in " + lo + ".." + hi, v);
    }

    private static ModelFileException field(String source, String key, String expected, Object got) {
        String text = String.valueOf(got);
        return new ModelFileException(source + ": metadata field '" + key + "' must be " + expected + ", got " + (text.length() > 80 ? text.substring(0, 80) : text));
    }

    private static boolean hasSpace(String w) {
        for (int i = 0; i < w.length(); i++) if (Character.isWhitespace(w.charAt(i)) || Character.isSpaceChar(w.charAt(i))) return true;
        return false;
    }

    /** Nesting depth of JSON text (brackets outside strings), so a deep document is refused before org.json recurses into it. */
    static int depth(String json) {
        int depth = 0, most = 0;
        boolean inString = false;
        for (int i = 0; i < json.length(); i++) {
            char c = json.charAt(i);
            if (inString) {
                if (c == '\\') i++;
                else if (c == '"') inString = false;
            } else if (c == '"') inString = true;
            else if (c == '{' || c == '[') most = Math.max(most, ++depth);
            else if (c == '}' || c == ']') depth--;
        }
        return most;
    }

    /** The state tensors, in contract order (the order of {@code state[i]} in a {@link StepFunction}). */
    public List<TensorDecl> stateTensors() {
        List<TensorDecl> out = new ArrayList<>();
        for (TensorDecl t : tensors) if (t.isState()) out.add(t);
        return out;
    }

    /**
     * Read and check the metadata of a model file's bytes.
     *
     * @param data the whole {@code .tflite} file
     * @param source the file's name, for messages
     * @throws ModelFileException not a TFLite file, no edgecap metadata, a newer format, a digest
     *     that does not match the flatbuffer, an unverified export, or malformed fields
     */
    public static ModelMetadata read(byte[] data, String source) throws ModelFileException {
        if (data.length < 8 || data[4] != 'T' || data[5] != 'F' || data[6] != 'L' || data[7] != '3')
            throw new ModelFileException(source + ": not a TFLite model file");
        int start = archiveStart(data, source);
        String json = null;
        int entries = 0;
        try (ZipInputStream zip = new ZipInputStream(new ByteArrayInputStream(data, start, data.length - start))) {
            for (ZipEntry e; (e = zip.getNextEntry()) != null; ) {
                if (++entries > MAX_ENTRIES)
                    throw new ModelFileException(source + ": damaged edgecap metadata (more than " + MAX_ENTRIES + " archive entries)");
                if (!e.getName().equals("edgecap.json")) continue;
                if (e.getSize() > MAX_ENTRY_BYTES || e.getCompressedSize() > MAX_ENTRY_BYTES)
                    throw new ModelFileException(source + ": damaged edgecap metadata (edgecap.json declares " + e.getSize() + " bytes, at most " + MAX_ENTRY_BYTES + ")");
                json = new String(readAll(zip, MAX_ENTRY_BYTES, source), StandardCharsets.UTF_8);
            }
        } catch (ZipException e) {
            throw new ModelFileException(source + ": damaged metadata archive (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new ModelFileException(source + ": cannot read the metadata archive (" + e.getMessage() + ")", e);
        }
        if (json == null) throw new ModelFileException(source + ": the metadata archive has no edgecap.json: not an edgecap model");
        if (depth(json) > MAX_DEPTH)
            throw new ModelFileException(source + ": malformed edgecap.json (JSON nested too deeply, more than " + MAX_DEPTH + " levels)");
        ModelMetadata m;
        JSONObject j;
        try {
            j = new JSONObject(json);
            m = new ModelMetadata(j, start, source);
        } catch (JSONException e) {
            throw new ModelFileException(source + ": malformed edgecap.json (" + e.getMessage() + ")", e);
        }
        if (m.formatVersion > FORMAT_VERSION)
            throw new ModelFileException(source + ": metadata format " + m.formatVersion + " is newer than this app reads (" + FORMAT_VERSION + "); update the app");
        if (!j.optBoolean("verified", true))
            throw new ModelFileException(source + ": this export did not pass (or has not yet passed) verification against Keras");
        String expected = j.optString("flatbuffer_sha256", "");
        if (m.formatVersion >= 3 && !expected.matches("[0-9a-f]{64}"))
            throw new ModelFileException(source + ": metadata format " + m.formatVersion + " without the flatbuffer's digest; the file is damaged or was not written by edgecap");
        if (!expected.isEmpty() && !expected.equals(sha256(data, start)))
            throw new ModelFileException(source + ": the weights do not match the SHA-256 digest in the metadata: the file is damaged");
        return m;
    }

    /** Where the appended zip archive starts: its end record says how far before it the central directory begins. */
    static int archiveStart(byte[] data, String source) throws ModelFileException {
        ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = data.length - 22; p >= Math.max(0, data.length - 22 - 65535); p--) {
            if (b.getInt(p) != 0x06054b50) continue;
            long cdSize = b.getInt(p + 12) & 0xffffffffL, cdOffset = b.getInt(p + 16) & 0xffffffffL;
            long start = p - cdSize - cdOffset;
            if (start >= 8 && start < p) return (int) start;
        }
        throw new ModelFileException(source + ": no edgecap metadata archive after the flatbuffer: re-export the model with edgecap");
    }

    /** An entry's bytes, refused as soon as it inflates past {@code limit} (its declared size may be absent). */
    private static byte[] readAll(InputStream in, int limit, String source) throws IOException, ModelFileException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        for (int n; (n = in.read(buf)) > 0; ) {
            if (out.size() + n > limit)
                throw new ModelFileException(source + ": damaged edgecap metadata (edgecap.json inflates past " + limit + " bytes)");
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    private static String sha256(byte[] data, int length) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(data, 0, length);
            StringBuilder hex = new StringBuilder();
            for (byte x : md.digest()) hex.append(String.format("%02x", x));
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The caption's words: token ids to text, as the Python runtime joins them. */
    public String detokenize(int[] tokens) {
        StringBuilder s = new StringBuilder();
        for (int t : tokens) {
            if (s.length() > 0) s.append(' ');
            s.append(vocabulary.get(t));
        }
        return s.toString();
    }
}
