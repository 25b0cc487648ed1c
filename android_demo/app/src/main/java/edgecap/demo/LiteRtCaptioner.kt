package edgecap.demo

import edgecap.core.Hypothesis
import edgecap.core.LogitsProcessors
import edgecap.core.ModelMetadata
import edgecap.core.Preprocessing
import edgecap.core.Search
import edgecap.core.StepFunction
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.tensorflow.lite.Interpreter

/**
 * Captions decoded ARGB pixels with an edgecap model file through LiteRT's signature runners
 * `encode` and `decode_step`, working from the step contract in the file's metadata only (no
 * model's tensor names here): state tensors are carried and reordered by the core's search,
 * memory tensors are bound once per photo.
 */
class LiteRtCaptioner(modelBytes: ByteArray, source: String, threads: Int = 2) : AutoCloseable {
    val metadata: ModelMetadata = ModelMetadata.read(modelBytes, source)
    private val interpreter: Interpreter
    private val processors = LogitsProcessors.captioningDefaults(metadata, metadata.noRepeatNGramSize)

    init {
        val flatbuffer = ByteBuffer.allocateDirect(metadata.flatbufferSize).order(ByteOrder.nativeOrder())
        flatbuffer.put(modelBytes, 0, metadata.flatbufferSize).rewind()
        interpreter = Interpreter(flatbuffer, Interpreter.Options().setNumThreads(threads))
    }

    /**
     * One caption per n-best entry: text, log-probability, the attention map of each word, and
     * the photo's detected attributes with their probabilities (empty unless the model declares items).
     */
    class Caption(val text: String, val words: List<String>, val logProb: Double, val attention: Array<FloatArray>?, val attributes: List<Pair<String, Float>>)

    fun caption(argb: IntArray, width: Int, height: Int, beamSize: Int = metadata.beamSize, nBest: Int = 1): List<Caption> {
        val s = metadata.imageSize
        val pixels = Preprocessing.resize(argb, width, height, s)
        val image = ByteBuffer.allocateDirect(pixels.size).order(ByteOrder.nativeOrder()).put(pixels).rewind()
        val encoded = HashMap<String, Any>()
        for (t in metadata.tensors) encoded[t.name] = shaped(1, t.shape)
        val ids = Array(1) { IntArray(metadata.itemCount) }
        val scores = Array(1) { FloatArray(metadata.itemCount) }
        if (metadata.itemIdsOutput != null) {
            encoded[metadata.itemIdsOutput] = ids
            encoded[metadata.itemScoresOutput] = scores
        }
        interpreter.runSignature(mapOf("image" to image), encoded, "encode")
        val attributes = (0 until metadata.itemCount).map { metadata.vocabulary[ids[0][it]] to scores[0][it] }
        val stateDecls = metadata.stateTensors()
        val state = Array(stateDecls.size) { i -> arrayOf(flatten(encoded[stateDecls[i].name]!!)) }
        val memory = metadata.tensors.filter { !it.isState }.associate { it.name to encoded[it.name]!! }
        val step = Step(memory)
        val hyps: List<Hypothesis> = if (beamSize == 1) {
            Search.greedy(step, state, metadata.startId, metadata.endId, metadata.maxLength, processors)
        } else {
            Search.beam(step, state, metadata.startId, metadata.endId, beamSize, metadata.maxLength, metadata.lengthPenalty, minOf(nBest, beamSize), processors)
        }
        return hyps.map { h -> Caption(metadata.detokenize(h.tokens), h.tokens.map { metadata.vocabulary[it] }, h.logProb, h.attention, attributes) }
    }

    /** `decode_step` as the core's [StepFunction], with one photo's memory bound. */
    private inner class Step(private val memory: Map<String, Any>) : StepFunction {
        override fun step(tokens: IntArray, state: Array<Array<FloatArray>>): StepFunction.Result {
            val b = tokens.size
            val decls = metadata.stateTensors()
            val inputs = HashMap<String, Any>(memory)
            inputs["tokens"] = tokens
            for ((i, t) in decls.withIndex()) inputs[t.name] = unflatten(state[i], t.shape)
            val logProbs = Array(b) { FloatArray(metadata.vocabulary.size) }
            val outputs = HashMap<String, Any>()
            outputs["log_probs"] = logProbs
            for (t in decls) outputs[t.name] = shaped(b, t.shape)
            val attentionName = metadata.attentionOutput
            if (attentionName != null) outputs[attentionName] = Array(b) { FloatArray(metadata.attentionSize) }
            interpreter.runSignature(inputs, outputs, "decode_step")
            val newState = Array(decls.size) { i -> Array(b) { r -> flatten(java.lang.reflect.Array.get(outputs[decls[i].name]!!, r)) } }
            @Suppress("UNCHECKED_CAST")
            val attention = attentionName?.let { outputs[it] as Array<FloatArray> }
            return StepFunction.Result(logProbs, newState, attention)
        }
    }

    override fun close() = interpreter.close()

    companion object {
        /** A zero float array of shape (rows, *shape), for the interpreter to fill. */
        fun shaped(rows: Int, shape: IntArray): Any = java.lang.reflect.Array.newInstance(java.lang.Float.TYPE, rows, *shape)

        /** (rows, *shape) from flat rows. */
        fun unflatten(rows: Array<FloatArray>, shape: IntArray): Any {
            val out = shaped(rows.size, shape)
            for ((r, flat) in rows.withIndex()) fill(java.lang.reflect.Array.get(out, r), flat, 0)
            return out
        }

        private fun fill(target: Any, flat: FloatArray, start: Int): Int {
            if (target is FloatArray) {
                System.arraycopy(flat, start, target, 0, target.size)
                return start + target.size
            }
            var pos = start
            for (i in 0 until java.lang.reflect.Array.getLength(target)) pos = fill(java.lang.reflect.Array.get(target, i), flat, pos)
            return pos
        }

        /** A nested float array (one row, or a (1, *shape) array), flattened without boxing. */
        fun flatten(array: Any): FloatArray {
            val out = FloatArray(count(array))
            copyOut(array, out, 0)
            return out
        }

        private fun count(a: Any): Int =
            if (a is FloatArray) a.size else (0 until java.lang.reflect.Array.getLength(a)).sumOf { count(java.lang.reflect.Array.get(a, it)) }

        private fun copyOut(source: Any, flat: FloatArray, start: Int): Int {
            if (source is FloatArray) {
                System.arraycopy(source, 0, flat, start, source.size)
                return start + source.size
            }
            var pos = start
            for (i in 0 until java.lang.reflect.Array.getLength(source)) pos = copyOut(java.lang.reflect.Array.get(source, i), flat, pos)
            return pos
        }
    }
}
