"""Before/after photo collages for replies to citizens (see :func:`render_collage`).

``render_collage`` is pure: give it the photo bytes, get a JPEG (or the reason there is
none) and the list of photos it had to leave out.
"""

from __future__ import annotations

from sinks.collage.photos import PhotoInput, PhotoProblem
from sinks.collage.render import CollageResult, CollageSettings, render_collage

__all__ = ["CollageResult", "CollageSettings", "PhotoInput", "PhotoProblem", "render_collage"]
