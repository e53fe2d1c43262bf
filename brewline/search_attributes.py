"""The custom search attributes a release keeps current, so people can filter in the UI.

`temporal workflow list --query 'ReleaseStage="awaiting-approval"'` finds releases
waiting for a person. The local platform registers them when the dev server starts.
"""

from temporalio.common import SearchAttributeKey

RELEASE_SERVICES = SearchAttributeKey.for_keyword_list("ReleaseServices")
RELEASE_VERSION = SearchAttributeKey.for_keyword("ReleaseVersion")
RELEASE_STAGE = SearchAttributeKey.for_keyword("ReleaseStage")

ALL = (RELEASE_SERVICES, RELEASE_VERSION, RELEASE_STAGE)

# ReleaseStage values besides the stage names themselves.
AWAITING_APPROVAL = "awaiting-approval"
SUCCEEDED = "succeeded"
FAILED = "failed"
ABORTED = "aborted"
ROLLING_BACK = "rolling-back"
