# serving = none: storage, registry and identities only; nothing is deployed, so there is no service URL.
output "service_url" {
  description = "Always empty: this project does not deploy its model."
  value       = ""
}

# Nothing runs inside Azure on this project's behalf, so no subnet needs to pass the storage and key vault firewalls.
locals {
  trusted_subnet_ids = []
}
