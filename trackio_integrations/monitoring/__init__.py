"""Monitoring: the host's system metrics, every node of a job, health checks, alerts, webhooks.

May import: ``trackio_integrations.core`` and ``errors``; psutil and nvidia-ml-py only when sampling.
Each part is a producer that calls the public client API it is handed (``log_system``, ``alert``),
never ``trackio_integrations.client`` itself.

``system`` samples CPU, memory, disk, network and NVIDIA GPUs; ``nodes`` lets each node's local
rank 0 sample into rank 0's run; ``health`` raises the automatic alerts (NaN, spike, stall,
failure); ``alerts`` is the client's ``alert()``; ``webhook`` posts alerts to Slack or Discord.
"""
