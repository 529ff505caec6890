"""The Hugging Face Trainer adapter: ``TrackioCallback`` and what ``report_to="trackio"`` becomes.

May import: ``trackio_integrations.client`` and below; ``transformers`` itself only once a callback
is used. ``callback`` maps the Trainer's events to client calls; ``args`` reads the target and the
run's config from ``TrainingArguments``; ``handler`` finds and retires transformers' own callback.
"""
