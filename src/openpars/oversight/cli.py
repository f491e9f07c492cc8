"""`openpars oversight`: explanations and coverage, canary records, flags and the review queue."""

from __future__ import annotations

from openpars.oversight import explain_cli, review_cli, whatif_cli

app = explain_cli.app
# whatif_cli registers `what-if` on explain_cli.app when imported.
__all__ = ["app", "whatif_cli"]
app.info.help = (
    "Oversight (issue 13): explain every external access to a person, plant canary records, "
    "and review the flags detectors raise."
)
for group in review_cli.app.registered_groups:
    app.registered_groups.append(group)
for command in review_cli.app.registered_commands:
    app.registered_commands.append(command)
