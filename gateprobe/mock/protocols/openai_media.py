"""Non-generating OpenAI-compatible endpoints: embeddings, image generation, rerank."""

from __future__ import annotations

import base64
from typing import Any

from gateprobe.mock.asgi import Request
from gateprobe.mock.call_types import Call, Frame, Spec
from gateprobe.mock.errors import GatewayError
from gateprobe.mock.protocols.common import WriterBase, invalid, opt_int, opt_str, req_str
from gateprobe.mock.upstream import (
    Completion,
    embedding,
    embedding_base64,
    png_image,
    prompt_tokens,
    rerank_scores,
)

__all__ = ["EmbeddingsWriter", "ImagesWriter", "RerankWriter", "image_path"]


def image_path(name: str) -> str:
    return f"/_gateprobe/images/{name}.png"


class _Flat(WriterBase):
    """Answers that are one JSON body: no stream, no in-band errors."""

    protocol = "openai"

    @property
    def seed(self) -> int:
        return self.state.config.seed

    def frames(self, call: Call, spec: Spec, c: Completion) -> list[Frame]:
        raise NotImplementedError

    def error_frames(self, call: Call, spec: Spec, error: GatewayError, sent: int) -> list[bytes]:
        return []

    def stream_content_type(self, spec: Spec) -> str:
        return "application/json"


class EmbeddingsWriter(_Flat):
    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        raw = body.get("input")
        if raw is None:
            raise GatewayError(
                400, "missing_field", "Missing required field 'input'", param="input"
            )
        inputs = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(t, str | list) for t in inputs)
        ):
            raise invalid("input", "Field 'input' must be a string or a non-empty array")
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        fmt = opt_str(body, "encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise invalid("encoding_format", "'encoding_format' must be float or base64")
        dims = opt_int(body, "dimensions") or self.state.config.embedding_dimensions
        if dims > 4096:
            raise invalid("dimensions", "'dimensions' must be at most 4096")
        spec = Spec(model, "embeddings", prompt_tokens=prompt_tokens(texts, 0))
        spec.options = {"texts": texts, "format": fmt, "dimensions": dims}
        return spec

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        data = []
        for i, text in enumerate(spec.options["texts"]):
            vector = embedding(self.seed, call.model.id, text, spec.options["dimensions"])
            value: Any = embedding_base64(vector) if spec.options["format"] == "base64" else vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": call.model_name,
            "usage": {"prompt_tokens": spec.prompt_tokens, "total_tokens": spec.prompt_tokens},
        }


class ImagesWriter(_Flat):
    cacheable = False  # the answer's image URLs name the Host the request was sent to

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        prompt = req_str(body, "prompt")
        model = opt_str(body, "model") or "gpt-image-1"
        n = opt_int(body, "n") or 1
        if n > 10:
            raise invalid("n", "'n' must be between 1 and 10")
        fmt = opt_str(body, "response_format") or "b64_json"
        if fmt not in ("b64_json", "url"):
            raise invalid("response_format", "'response_format' must be b64_json or url")
        size = opt_str(body, "size") or "1024x1024"
        spec = Spec(model, "images", prompt_tokens=prompt_tokens([prompt], 0))
        spec.options = {
            "prompt": prompt,
            "n": n,
            "format": fmt,
            "size": size,
            "host": request.headers.get("host", "127.0.0.1"),
        }
        return spec

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        data = []
        for i in range(spec.options["n"]):
            prompt = f"{spec.options['prompt']}#{i}"
            if spec.options["format"] == "url":
                name = base64.urlsafe_b64encode(prompt.encode()).decode().rstrip("=")
                item = {"url": f"http://{spec.options['host']}{image_path(name)}"}
            else:
                item = {"b64_json": base64.b64encode(png_image(self.seed, prompt)).decode()}
            item["revised_prompt"] = spec.options["prompt"]
            data.append(item)
        return {
            "created": call.created,
            "data": data,
            "usage": {
                "input_tokens": spec.prompt_tokens,
                "output_tokens": 0,
                "total_tokens": spec.prompt_tokens,
                "input_tokens_details": {"text_tokens": spec.prompt_tokens, "image_tokens": 0},
            },
        }


class RerankWriter(_Flat):
    """Jina/Cohere-style rerank, the shape new-api and LiteLLM serve."""

    def parse(self, body: dict[str, Any], request: Request, path_model: str | None) -> Spec:
        model = req_str(body, "model")
        query = req_str(body, "query")
        docs = body.get("documents")
        if docs is None:
            raise GatewayError(
                400, "missing_field", "Missing required field 'documents'", param="documents"
            )
        if not isinstance(docs, list) or not docs:
            raise invalid("documents", "Field 'documents' must be a non-empty array")
        texts = []
        for i, doc in enumerate(docs):
            text = doc.get("text") if isinstance(doc, dict) else doc
            if not isinstance(text, str):
                raise invalid(f"documents[{i}]", f"'documents[{i}]' must be a string or {{text}}")
            texts.append(text)
        top_n = opt_int(body, "top_n") or len(texts)
        spec = Spec(model, "rerank", prompt_tokens=prompt_tokens([query, *texts], 0))
        spec.options = {
            "query": query,
            "docs": texts,
            "top_n": top_n,
            "return_documents": bool(body.get("return_documents", True)),
        }
        return spec

    def render(self, call: Call, spec: Spec, c: Completion | None) -> dict[str, Any]:
        docs = spec.options["docs"]
        scores = rerank_scores(self.seed, call.model.id, spec.options["query"], docs)
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))[: spec.options["top_n"]]
        results = []
        for i in order:
            result: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
            if spec.options["return_documents"]:
                result["document"] = {"text": docs[i]}
            results.append(result)
        return {
            "id": call.request_id,
            "model": call.model_name,
            "results": results,
            "usage": {"prompt_tokens": spec.prompt_tokens, "total_tokens": spec.prompt_tokens},
        }
