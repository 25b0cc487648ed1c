package edgecap.demo

import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.net.Uri
import android.os.Bundle
import android.widget.Button
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import java.util.concurrent.Executors

/**
 * Pick a photo (gallery or camera), caption it on the device with the built-in model, show the
 * 3-best captions; tap a word to overlay the attention map it was generated with.
 */
class MainActivity : AppCompatActivity() {
    private lateinit var captioner: LiteRtCaptioner
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var photoView: ImageView
    private lateinit var status: TextView
    private lateinit var captionsView: LinearLayout
    private var photo: Bitmap? = null

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.GetContent()) { uri: Uri? ->
        uri?.let { contentResolver.openInputStream(it)?.use { s -> BitmapFactory.decodeStream(s) } }?.let(::caption)
    }
    private val takePhoto = registerForActivityResult(ActivityResultContracts.TakePicturePreview()) { bitmap: Bitmap? -> bitmap?.let(::caption) }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        photoView = findViewById(R.id.photo)
        status = findViewById(R.id.status)
        captionsView = findViewById(R.id.captions)
        val name = "show_attend_tell_flickr8k_int8.tflite"
        captioner = LiteRtCaptioner(assets.open(name).use { it.readBytes() }, name)
        status.text = "${captioner.metadata.name} ${captioner.metadata.version} (${captioner.metadata.quantization})"
        findViewById<Button>(R.id.gallery).setOnClickListener { pickPhoto.launch("image/*") }
        findViewById<Button>(R.id.camera).setOnClickListener { takePhoto.launch(null) }
    }

    private fun caption(bitmap: Bitmap) {
        val argbBitmap = bitmap.copy(Bitmap.Config.ARGB_8888, false)
        photo = argbBitmap
        photoView.setImageBitmap(argbBitmap)
        status.text = "captioning…"
        worker.execute {
            val w = argbBitmap.width
            val h = argbBitmap.height
            val argb = IntArray(w * h).also { argbBitmap.getPixels(it, 0, w, 0, 0, w, h) }
            val start = System.nanoTime()
            val captions = captioner.caption(argb, w, h, beamSize = 3, nBest = 3)
            val ms = (System.nanoTime() - start) / 1e6
            runOnUiThread { show(captions, ms) }
        }
    }

    private fun show(captions: List<LiteRtCaptioner.Caption>, ms: Double) {
        status.text = "%.0f ms on this device".format(ms)
        captionsView.removeAllViews()
        for (c in captions) {
            val row = LinearLayout(this).apply { orientation = LinearLayout.HORIZONTAL }
            c.words.forEachIndexed { i, word ->
                row.addView(TextView(this).apply {
                    text = "$word "
                    textSize = 18f
                    setOnClickListener { if (captioner.metadata.attentionOverGrid) c.attention?.let { overlay(it[i]) } }
                })
            }
            row.addView(TextView(this).apply { text = "(%.2f)".format(c.logProb) })
            captionsView.addView(row)
        }
        captions.firstOrNull()?.attributes?.takeIf { it.isNotEmpty() }?.let { attributes ->
            captionsView.addView(TextView(this).apply { text = attributes.joinToString(", ") { (w, p) -> "%s %.2f".format(w, p) } })
        }
    }

    /** The photo with one word's attention map (a square grid, e.g. 7×7) shaded over it. */
    private fun overlay(alpha: FloatArray) {
        val base = photo ?: return
        val grid = Math.round(Math.sqrt(alpha.size.toDouble())).toInt()
        val out = base.copy(Bitmap.Config.ARGB_8888, true)
        val canvas = Canvas(out)
        val max = alpha.maxOrNull() ?: return
        val paint = Paint()
        val cw = out.width / grid.toFloat()
        val ch = out.height / grid.toFloat()
        for (r in 0 until grid) for (col in 0 until grid) {
            val a = alpha[r * grid + col] / max
            paint.color = Color.argb((200 * (1 - a)).toInt(), 0, 0, 0)  // dark where the model did not look
            canvas.drawRect(col * cw, r * ch, (col + 1) * cw, (r + 1) * ch, paint)
        }
        photoView.setImageBitmap(out)
    }

    override fun onDestroy() {
        captioner.close()
        worker.shutdown()
        super.onDestroy()
    }
}
