"""`embed_frame()`: the booking widget's frame helper (embed_frame.jsx): posts the page's
height to the embedding page, which resizes the iframe (assets/embed.js). Bundled with the
app: the CSP lets no inline or eval'd script run."""
from __future__ import annotations

import reflex as rx

_SOURCE = rx.asset("embed_frame.jsx", shared=True)


class EmbedFrame(rx.Component):
    """Renders nothing; see embed_frame.jsx."""

    library = _SOURCE.importable_path
    tag = "EmbedFrame"


embed_frame = EmbedFrame.create
