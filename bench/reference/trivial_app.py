"""Reference for cold start: the smallest Gradio 6 app (one text box echoed), launched the usual way."""

import os

import gradio as gr

demo = gr.Interface(lambda text: text, "text", "text")

if __name__ == "__main__":
    demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]))
