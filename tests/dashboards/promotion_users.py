"""The users of the dashboard tests' promotion workdirs (conftest.py's promotion_workdir), by role."""

PROMOTER, APPROVER, BOTH_ROLES = "rita", "arno", "pia"
USERS = {PROMOTER: ["promote"], APPROVER: ["approve"], BOTH_ROLES: ["promote", "approve"]}
