# Project identity (project.auto.tfvars, written by the template)

variable "project" {
  description = "Project slug: prefix of every resource name (<project>-<environment>[-suffix])."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.project))
    error_message = "project must be 3 to 24 lowercase letters, digits and hyphens."
  }
}

variable "package_name" {
  description = "Python package of the project; the batch job runs `python -m <package_name>.batch`."
  type        = string
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
}

variable "environment" {
  description = "Deployment environment: staging or production (envs/<environment>.tfvars)."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "owner" {
  description = "owner tag of every resource (the owning team's e-mail)."
  type        = string
}

variable "cost_center" {
  description = "cost_center tag of every resource, for cost allocation."
  type        = string
}

variable "alert_email" {
  description = "E-mail address that receives budget alerts and alert notifications."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "github_repository" {
  description = "GitHub repository (<org>/<name>) whose workflows may sign in as the CI identity through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be <org>/<name> without wildcards."
  }
}

variable "trust_main_branch" {
  description = "Also let jobs on the main branch without a GitHub environment (image push, DVC, retraining, drift) sign in as this environment's CI identity. Only the environment that holds the repository variables (staging)."
  type        = bool
  default     = false
}

# Deployment

variable "image_tag" {
  description = "Image tag to serve (the git SHA pushed by CD). Empty: no serving resources yet (first apply)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z0-9][a-z0-9._-]{0,127})?$", var.image_tag))
    error_message = "image_tag must be empty or a lowercase image tag such as a git SHA."
  }
}

variable "image_digest" {
  description = "Digest (sha256:<64 hex>) of the image_tag CD built and scanned; the service runs the image by digest. Required in production."
  type        = string
  default     = ""

  validation {
    condition     = var.image_digest == "" || can(regex("^sha256:[0-9a-f]{64}$", var.image_digest))
    error_message = "image_digest must be sha256:<64 lowercase hex digits>."
  }

  validation {
    condition     = var.environment != "production" || var.image_tag == "" || var.image_digest != ""
    error_message = "production deploys by digest only: give image_digest (make deploy ENV=production IMAGE_TAG=<sha> IMAGE_DIGEST=sha256:<...>, the digest CD scanned)."
  }
}

variable "image_importers" {
  description = <<-EOT
    Principal (object) IDs that may copy images out of this environment's registry into their own with
    `az acr import`: production's `ci_principal_id`, set in staging. CD builds each image once, pushes it to staging's
    registry and promotes the tested digest into production's registry before the production deploy, so production
    pulls only from its own registry. Each gets AcrPull (read the image) and Reader (resolve the registry across
    subscriptions) on this registry, nothing else.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.image_importers : can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", id))])
    error_message = "image_importers must be principal (object) IDs: lowercase GUIDs such as production's ci_principal_id output."
  }
}

# Network: who may reach the storage account and key vault data planes from outside Azure

variable "allowed_ip_ranges" {
  description = <<-EOT
    Public IPv4 addresses or CIDR ranges (no private ranges) allowed through the storage and key vault firewalls:
    the egress of the people and runners that run Terraform or push DVC data. Everything else is denied, except
    trusted Azure services and the serving subnet (container and batch serving).
  EOT
  type        = list(string)
  default     = []
}

variable "runner_ip" {
  description = "Public IP of the GitHub-hosted runner running this Terraform (TF_VAR_runner_ip, set by `make firewall-admit` in CI, which admits it before Terraform starts): kept in the firewalls for the run so the apply does not remove the rule the job depends on. Empty outside CI."
  type        = string
  default     = ""

  validation {
    condition     = var.runner_ip == "" || can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}$", var.runner_ip))
    error_message = "runner_ip must be empty or one IPv4 address."
  }
}

# Storage, registry and logs (defaults are the production posture; envs/staging.tfvars lowers cost)

variable "storage_replication" {
  description = "Replication of the storage account: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  type        = string
  default     = "GZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication)
    error_message = "storage_replication must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "soft_delete_retention_days" {
  description = "Days deleted blobs, containers and replaced blob versions are kept (recovery window)."
  type        = number
  default     = 30
}

variable "registry_sku" {
  description = <<-EOT
    Container registry SKU. Premium adds the untagged-manifest retention policy, zone redundancy and dedicated data
    endpoints (about 10x the price of Basic); Basic suits staging, where few images are pushed.
  EOT
  type        = string
  default     = "Premium"

  validation {
    condition     = contains(["Basic", "Standard", "Premium"], var.registry_sku)
    error_message = "registry_sku must be Basic, Standard or Premium."
  }
}

variable "untagged_manifest_retention_days" {
  description = "Days after which untagged manifests are deleted from a Premium registry."
  type        = number
  default     = 14
}

variable "log_retention_days" {
  description = "Retention of the Log Analytics workspace (serving logs, storage access logs, registry events)."
  type        = number
  default     = 365
}

variable "log_daily_quota_gb" {
  description = "Daily ingestion cap of the Log Analytics workspace in GB (-1: no cap). Caps the cost of a log storm."
  type        = number
  default     = -1
}

variable "zone_redundant" {
  description = "Spread the serving environment and registry across availability zones (region must support them)."
  type        = bool
  default     = true
}

# Cost

variable "monthly_budget" {
  description = "Monthly budget of the environment's resource group, in the subscription's billing currency."
  type        = number
}

variable "feature_store" {
  description = "feature_store = feast: the Redis online store and its access (feature_store.tf)."
  type        = bool
  default     = false
}
