"""Chat templates a run can train and chat with, chosen by ``model.template``.

``model`` keeps the model's own template (SmolLM2 ships ChatML). The others exist for base models
without one, or to train a model into a different format. Each carries ``{% generation %}``
markers, so TRL can build an assistant-only loss mask (``sft.assistant_only_loss``), and names its
turn-end token: generation must stop there, so it becomes the tokenizer's eos token and must be a
single token of the model's vocabulary (``None``: the model's own eos ends a turn). The table is
configuration (``model.template``'s choices); engine.models.loader.apply_template puts one on a tokenizer.
"""

from __future__ import annotations

# ChatML (SmolLM2, Qwen); the closing <|im_end|> is inside the marker: the model must learn to stop.
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\n' }}"
    "{%- else %}{{- message['content'] + '<|im_end|>\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
LLAMA3 = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}"
    "{%- else %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
# Plain-text turns for base models whose vocabulary has no chat tokens; the model's eos ends a turn.
ALPACA = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'user' %}{{- '### Instruction:\n' + message['content'] + '\n\n' }}"
    "{%- else %}{{- '### Response:\n' }}"
    "{% generation %}{{- message['content'] + eos_token }}{% endgeneration %}{{- '\n\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '### Response:\n' }}{%- endif %}"
)
TEMPLATES: dict[str, tuple[str, str | None]] = {
    "chatml": (CHATML, "<|im_end|>"),
    "llama3": (LLAMA3, "<|eot_id|>"),
    "alpaca": (ALPACA, None),
}
TEMPLATE_CHOICES = ["model", *TEMPLATES]
