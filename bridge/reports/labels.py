"""The words of the callback log: outcomes, attempt results, grades (message ids, translated where shown;
the same ids as the callback queue's, so they read the same)."""
from __future__ import annotations

from bridge.i18n import N_

OUTCOME_LABELS = {"informed": N_("Informed"), "follow_up": N_("Further question"),
                  "unreachable": N_("Not reached"), "do_not_call": N_("Do not call again"),
                  "wrong_number": N_("Wrong number"), "pending": N_("Callback waiting"),
                  "none": N_("No callback")}
RESULT_LABELS = {"answered": N_("Answered"), "busy": N_("Busy"), "no_answer": N_("No answer"),
                 "failed": N_("Failed"), "operator_no_answer": N_("The operator's phone did not answer"),
                 "unknown": N_("Result lost: to check"), None: N_("Dialling")}
GRADE_LABELS = {5: N_("Very satisfied"), 4: N_("Satisfied"), 3: N_("Fairly satisfied"), 2: N_("Dissatisfied"),
                1: N_("Very dissatisfied")}


def attempts_text(attempts, localtime, _) -> str:
    """Each attempt as "time operator result", in order ("; " between them)."""
    return "; ".join(f"{localtime(a['at'])} {a['operator'] or ''} {_(RESULT_LABELS.get(a['result'], a['result']))}"
                     for a in attempts)


# The call log's dispositions (bridge.db.models.CallDisposition), the desk's words where they fit.
DISPOSITION_LABELS = {"answered": N_("Answered call"), "abandoned": N_("Abandoned in the queue"),
                      "hung_up_in_menu": N_("Hung up in the menu"), "after_hours_message": N_("After-hours message"),
                      "status_line": N_("Status line"), "failed": N_("Failed"), "in_progress": N_("In progress")}
