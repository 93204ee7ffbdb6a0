# Serving mode `none`: no deployment. This module provides storage, the image registry and the identities only;
# the FastAPI app and `make batch-score` still run locally.

output "service_url" {
  description = "Always empty: this project deploys no serving (serving = none)."
  value       = ""
}
