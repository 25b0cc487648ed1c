from edgecap.models.show_attend_tell.decoder import SoftAttentionDecoder
from edgecap.models.show_attend_tell.model import ShowAttendTell

__all__ = ["ShowAttendTell", "SoftAttentionDecoder"]
