"""edgecap in the browser: the files LiteRT.js runs (:mod:`edgecap.web.files`) and the demo server (:mod:`edgecap.web.serve`)."""
