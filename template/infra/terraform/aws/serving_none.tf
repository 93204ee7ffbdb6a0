# serving = none: storage, registry and identity only; nothing is deployed.

locals {
  service_url = ""
}
