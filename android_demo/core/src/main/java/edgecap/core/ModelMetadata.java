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
        List<String> vocab = new ArrayList<>();
        for (int i = 0; i < words.length(); i++) vocab.add(words.getString(i));
        vocabulary = Collections.unmodifiableList(vocab);
        imageSize = j.getInt("image_size");
        padId = j.getInt("pad_id");
        startId = j.getInt("start_id");
        endId = j.getInt("end_id");
        unkId = j.getInt("unk_id");
        maxLength = j.getInt("max_length");
        beamSize = j.getInt("beam_size");
        lengthPenalty = j.getDouble("length_penalty");
        noRepeatNGramSize = j.getInt("no_repeat_ngram_size");
        formatVersion = j.getInt("format_version");
        for (int id : new int[] {padId, startId, endId, unkId})
            if (id < 0 || id >= vocab.size()) throw new ModelFileException(source + ": special token id " + id + " is outside the vocabulary of " + vocab.size() + " words");
        if (!j.has("contract") || j.isNull("contract"))
            throw new ModelFileException(source + ": metadata format " + formatVersion + " has no step contract; re-export the model with a current edgecap");
        JSONObject contract = j.getJSONObject("contract");
        JSONArray ts = contract.getJSONArray("tensors");
        List<TensorDecl> list = new ArrayList<>();
        for (int i = 0; i < ts.length(); i++) {
            JSONObject t = ts.getJSONObject(i);
            JSONArray s = t.getJSONArray("shape");
            int[] shape = new int[s.length()];
            for (int k = 0; k < shape.length; k++) shape[k] = s.getInt(k);
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
        try (ZipInputStream zip = new ZipInputStream(new ByteArrayInputStream(data, start, data.length - start))) {
            for (ZipEntry e; (e = zip.getNextEntry()) != null; )
                if (e.getName().equals("edgecap.json")) json = new String(readAll(zip), StandardCharsets.UTF_8);
        } catch (ZipException e) {
            throw new ModelFileException(source + ": damaged metadata archive (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new ModelFileException(source + ": cannot read the metadata archive (" + e.getMessage() + ")", e);
        }
        if (json == null) throw new ModelFileException(source + ": the metadata archive has no edgecap.json: not an edgecap model");
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

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        for (int n; (n = in.read(buf)) > 0; ) out.write(buf, 0, n);
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
