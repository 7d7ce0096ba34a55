"""In-page rendering for Explore: onnxruntime-web (fetched, pinned), the generator exported to ONNX
and published under content-hashed names, pre-compressed files served with long-lived cache headers,
and the page's JavaScript. No gradio import here except in `serving`; engines stay in gan/."""
