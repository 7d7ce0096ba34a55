"""Push an exported model folder to the Hugging Face Hub, with the Hub's errors in plain words."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import httpx
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

from gan.explorer.model import REPO_ID

OFFLINE = ("The Hugging Face Hub cannot be reached from this server (it runs offline). Download the .zip "
           "instead and upload its files to your repo yourself.")


def push_folder(folder: Path, repo_id: str, token: str) -> str:
    """Create (if needed) the model repo and upload the folder with `token` (a signed-in visitor's OAuth token
    on the Space, else the one typed in); return a Markdown link or raise gr.Error."""
    repo_id, token = (repo_id or "").strip(), (token or "").strip()
    if not REPO_ID.match(repo_id):
        raise gr.Error("The repo id must look like your-name/model-name.")
    if not token:
        raise gr.Error("Sign in with Hugging Face (on the Space), or paste a Hub token with write access "
                       "(huggingface.co/settings/tokens).")
    if constants.HF_HUB_OFFLINE:
        raise gr.Error(OFFLINE)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="Upload a DCGAN trained with GAN Atelier")
    except OfflineModeIsEnabled as err:
        raise gr.Error(OFFLINE) from err
    except HfHubHTTPError as err:  # wrong token, no write access, name taken...: the Hub's own words
        raise gr.Error(f"The Hub refused: {str(err).splitlines()[0]}") from err
    except HFValidationError as err:
        raise gr.Error(f"Invalid repo id: {err}") from err
    except httpx.HTTPError as err:
        raise gr.Error(f"{OFFLINE} ({type(err).__name__})") from err
    return f"Pushed to [{repo_id}]({url})."
