"""The ``speech-synthetic`` data source plugin: variable-length trials in the style of the human
attempted-speech data (METHOD.md section 6: 20 ms bins, 128 channels, trials of many lengths)."""

from ldns_framework import hookimpl


@hookimpl
def ldns_register_components(registrar):
    registrar.add("data", "speech-synthetic", "ldns_plugins.speech.source:SpeechSyntheticSource",
                  config="ldns_plugins.speech.config:SpeechSyntheticConfig",
                  summary="Synthetic variable-length trials (20 ms bins, 128 channels) driven by noisy latent "
                          "oscillators whose dynamics do not depend on the trial length; true latents and rates kept.")
