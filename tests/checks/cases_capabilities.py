"""Self-test cases of ``honours``: request options that a gateway drops on the way upstream.

The mock's dropping defects remove reasoning settings, tools or the response format from the
request before its upstream reads it; the answer then shows none of them.
"""

from __future__ import annotations

from selftest import Case

ASK = """\
id: selftest.honours_{name}
title: the answer honours {option}
parametrize:
  api:
{rows}
steps:
  - request:
      protocol: "{{api.protocol}}"
      operation: "{{api.operation}}"
      model_of: {model_of}
      body: "{{api.body}}"
    expect: {{status: 200, honours: {option}}}
"""
TOOL = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
REASONING_ROWS = """\
    - {id: openai, protocol: openai, operation: chat, body: {reasoning_effort: high}}
    - {id: responses, protocol: openai, operation: responses, body: {reasoning: {effort: high}}}
    - id: anthropic
      protocol: anthropic
      operation: chat
      body: {max_tokens: 2048, thinking: {type: enabled, budget_tokens: 1024}}
    - id: gemini
      protocol: gemini
      operation: chat
      body: {generationConfig: {thinkingConfig: {includeThoughts: true}}}"""
TOOLS_ROWS = f"""\
    - id: openai
      protocol: openai
      operation: chat
      body: {{tools: [{{type: function, function: {{name: get_weather, parameters: {TOOL}}}}}]}}
    - id: responses
      protocol: openai
      operation: responses
      body: {{tools: [{{type: function, name: get_weather, parameters: {TOOL}}}]}}
    - id: anthropic
      protocol: anthropic
      operation: chat
      body: {{tools: [{{name: get_weather, input_schema: {TOOL}}}]}}
    - id: gemini
      protocol: gemini
      operation: chat
      body: {{tools: [{{functionDeclarations: [{{name: get_weather}}]}}]}}"""
JSON_ROWS = """\
    - id: openai
      protocol: openai
      operation: chat
      body: {max_tokens: 256, response_format: {type: json_object}}
    - id: gemini
      protocol: gemini
      operation: chat
      body: {generationConfig: {maxOutputTokens: 256, responseMimeType: application/json}}"""

CASES: list[Case] = [
    Case(
        "reasoning-dropped",
        "honours",
        ASK.format(name="reasoning", option="reasoning", rows=REASONING_ROWS, model_of="reasoning"),
        "the reasoning request (reasoning_effort, thinking, thinkingConfig) did not reach",
        defects=("reasoning-dropped",),
    ),
    Case(
        "tools-dropped",
        "honours",
        ASK.format(name="tools", option="tools", rows=TOOLS_ROWS, model_of="chat"),
        "the tools did not reach the model",
        defects=("tools-dropped",),
    ),
    Case(
        "json-mode-dropped",
        "honours",
        ASK.format(name="json", option="json", rows=JSON_ROWS, model_of="chat"),
        "the JSON response format did not reach the model: the answer text is not JSON",
        defects=("json-mode-dropped",),
    ),
]
