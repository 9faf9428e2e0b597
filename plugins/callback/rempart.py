"""Ansible's default screen output, with expected probing said in one plain line.

A task that probes (which address answers, whether a login works yet) marks itself with the task
variable ``rempart_probe``, whose value says what a negative answer means. When such a task fails or
finds its host unreachable *and* the task expects it (``ignore_errors`` / ``ignore_unreachable``), the
operator sees ``probe: [host]: <that sentence>`` instead of a red ``fatal: ... ...ignoring`` with ssh's
own complaints. A task that waits (``retries``/``until``) and carries the same variable prints one
``waiting: [host]: <that sentence>`` line at its first retry instead of a ``FAILED - RETRYING`` line
per attempt; if it never succeeds, its failure is printed in full. Everything else, and every real
error, is printed exactly as the default callback does.
"""

from __future__ import annotations

from ansible import constants as C
from ansible.plugins.callback.default import CallbackModule as DefaultCallback

DOCUMENTATION = """
    name: rempart
    type: stdout
    short_description: default output, with expected probing in one plain line per host
    description:
      - Ansible's default output. Tasks that carry the variable C(rempart_probe) and expect a negative
        answer (C(ignore_errors) or C(ignore_unreachable)) print one plain line with that variable's
        text instead of a red C(fatal) when the answer is negative.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout in configuration
"""

PROBE_VAR = "rempart_probe"


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "rempart"

    @staticmethod
    def _meaning(result) -> str | None:
        meaning = (result.task.vars or {}).get(PROBE_VAR)
        return " ".join(str(meaning).split()) if meaning else None

    def _say(self, result, meaning: str) -> None:
        if self._last_task_banner != result.task._uuid:
            self._print_task_banner(result.task)
        self._display.display(f"probe: [{self.host_label(result)}]: {meaning}", color=C.COLOR_SKIP)

    def v2_runner_retry(self, result) -> None:
        meaning = self._meaning(result)
        if not meaning:
            super().v2_runner_retry(result)
            return
        if result._result.get("attempts") == 1:
            if self._last_task_banner != result.task._uuid:
                self._print_task_banner(result.task)
            self._display.display(f"waiting: [{self.host_label(result)}]: {meaning}", color=C.COLOR_SKIP)

    def v2_runner_on_unreachable(self, result) -> None:
        meaning = self._meaning(result)
        if meaning and result.task.ignore_unreachable:
            self._say(result, meaning)
            return
        super().v2_runner_on_unreachable(result)

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        meaning = self._meaning(result)
        if meaning and ignore_errors:
            self._say(result, meaning)
            return
        super().v2_runner_on_failed(result, ignore_errors)
