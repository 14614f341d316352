"""Chat templates a run can train and chat with, chosen by ``model.template``.

``model`` keeps the model's own template (SmolLM2 ships ChatML). The others exist for base models
without one, or to train a model into a different format. Each carries ``{% generation %}``
markers, so TRL can build an assistant-only loss mask (``sft.assistant_only_loss``), and names its
turn-end token: generation must stop there, so it becomes the tokenizer's eos token and must be a
single token of the model's vocabulary (``None``: the model's own eos ends a turn).
"""

from __future__ import annotations

from engine.config.fields import ConfigError  # not engine.config: the package imports TEMPLATE_CHOICES from here

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


def apply_template(tokenizer, name: str):
    """Give ``tokenizer`` the named chat template (in place) and make its turn end the eos token."""
    if name == "model":
        if not tokenizer.chat_template:
            raise ConfigError("model.template: this model has no chat template of its own; "
                              f"pick one of {', '.join(TEMPLATES)}")
        return tokenizer
    if name not in TEMPLATES:
        raise ConfigError(f"model.template: {name!r} is not one of {', '.join(TEMPLATE_CHOICES)}")
    template, stop = TEMPLATES[name]
    if stop is not None:
        if stop not in tokenizer.get_vocab():
            raise ConfigError(f"model.template: {name} ends turns with {stop}, which is not a token of this "
                              f"model's vocabulary; pick 'model' or 'alpaca'")
        tokenizer.eos_token = stop
    tokenizer.chat_template = template
    return tokenizer
