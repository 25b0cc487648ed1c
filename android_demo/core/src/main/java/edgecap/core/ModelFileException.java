package edgecap.core;

/** A model file is not an edgecap model, is damaged, or is not one this core can run. The message names the file. */
public class ModelFileException extends Exception {
    private static final long serialVersionUID = 1L;

    public ModelFileException(String message) {
        super(message);
    }

    public ModelFileException(String message, Throwable cause) {
        super(message, cause);
    }
}
