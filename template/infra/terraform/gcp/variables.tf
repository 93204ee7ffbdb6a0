# Project-wide values come from project.auto.tfvars (rendered from the template answers);
# per-environment values from envs/<environment>.tfvars; the image tag from `make deploy IMAGE_TAG=<sha>`.

variable "gcp_project_id" {
  description = "ID of the GCP project that hosts this environment (one project per environment is recommended). Set it in envs/<environment>.tfvars or TF_VAR_gcp_project_id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.gcp_project_id))
    error_message = "gcp_project_id must be a GCP project ID: 6 to 30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "project" {
  description = "Project slug: the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.project))
    error_message = "project must be 3 to 24 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "feature_store" {
  description = "feature_store = feast: the Firestore online store and its access (feature_store.tf)."
  type        = bool
  default     = false
}

variable "package_name" {
  description = "Python package of the project; the batch job runs `python -m <package_name>.batch`."
  type        = string
}

variable "image_name" {
  description = "Name of the Docker image inside the Artifact Registry repository."
  type        = string
}

variable "environment" {
  description = "Deployment environment."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "region" {
  description = "GCP region of every regional resource (buckets, key ring, registry, serving)."
  type        = string
}

variable "image_tag" {
  description = "Image tag to serve (the git SHA). Empty: serving resources are not created yet, so the first apply bootstraps storage, registry and identity."
  type        = string
  default     = ""
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

variable "image_repository" {
  description = "Repository the serving resources pull from, without tag. Empty: this environment's own Artifact Registry repository. CD builds each image once, so production usually points at staging's image_repository output (see README.md)."
  type        = string
  default     = ""
}

variable "image_readers" {
  description = "Members allowed to pull from this environment's repository, e.g. production's Cloud Run service agent (serviceAccount:service-<project number>@serverless-robot-prod.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.image_readers : can(regex("^(serviceAccount|group|user):", m))])
    error_message = "image_readers must be serviceAccount:, group: or user: members (never allUsers)."
  }
}

variable "owner" {
  description = "Owner label (derived from the author e-mail, label-safe)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_-]{1,63}$", var.owner))
    error_message = "owner must be a GCP label value: 1 to 63 lowercase letters, digits, - and _."
  }
}

variable "cost_center" {
  description = "Cost-centre label for cost allocation."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_-]{0,62}$", var.cost_center))
    error_message = "cost_center must be a GCP label value: a lowercase letter, then lowercase letters, digits, - and _."
  }
}

variable "alert_email" {
  description = "E-mail address that receives budget and monitoring alerts."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (<org>/<repo>) whose workflows may impersonate the CI service account."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must look like <org>/<repo>."
  }
}

variable "github_oidc_subjects" {
  description = "Suffixes of the GitHub OIDC `sub` claim accepted from this repository, after `repo:<org>/<repo>:` (for example `environment:production`, `ref:refs/heads/main`). Each may impersonate the CI service account, except `pull_request`, which may impersonate only the read-only plan service account (created only when listed)."
  type        = list(string)

  validation {
    condition     = length(var.github_oidc_subjects) > 0 && alltrue([for s in var.github_oidc_subjects : can(regex("^(environment:[A-Za-z0-9._-]+|ref:refs/(heads|tags)/[A-Za-z0-9._/-]+|pull_request)$", s))])
    error_message = "github_oidc_subjects needs at least one entry, each environment:<name>, ref:refs/heads/<branch>, ref:refs/tags/<tag> or pull_request (no wildcards)."
  }
}

variable "github_deploy_refs" {
  description = "Git refs from which a job of a GitHub environment (environment:<name> in github_oidc_subjects) may impersonate CI. Main only by default: another branch that names the environment gets no credentials."
  type        = list(string)
  default     = ["refs/heads/main"]

  validation {
    condition     = length(var.github_deploy_refs) > 0 && alltrue([for r in var.github_deploy_refs : can(regex("^refs/(heads|tags)/[A-Za-z0-9._/-]+$", r))])
    error_message = "github_deploy_refs needs at least one entry, each refs/heads/<branch> or refs/tags/<tag> (no wildcards)."
  }
}

variable "state_bucket" {
  description = "GCS bucket of this environment's Terraform state (envs/<environment>.backend.hcl); the CI service account gets object access to it."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the serving resources (Cloud Run service/job) through Terraform."
  type        = bool
}

variable "soft_delete_days" {
  description = "Days deleted objects stay recoverable in the data and model buckets (GCS soft delete; 0 disables it)."
  type        = number
  default     = 7

  validation {
    condition     = var.soft_delete_days == 0 || (var.soft_delete_days >= 7 && var.soft_delete_days <= 90)
    error_message = "soft_delete_days must be 0 or between 7 and 90."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced (noncurrent) object version is kept in the data and model buckets before deletion."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of the Cloud Logging bucket and of the bucket access logs, in days."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 1 && var.log_retention_days <= 3650
    error_message = "log_retention_days must be between 1 and 3650."
  }
}

variable "keep_image_versions" {
  description = "Number of most recent image versions the Artifact Registry cleanup policy always keeps."
  type        = number
  default     = 20
}

variable "billing_account" {
  description = "Billing account ID (XXXXXX-XXXXXX-XXXXXX) for the monthly budget. Empty: no budget is created (creating one needs Billing Account Costs Manager on that account)."
  type        = string
  default     = ""

  validation {
    condition     = var.billing_account == "" || can(regex("^[A-F0-9]{6}-[A-F0-9]{6}-[A-F0-9]{6}$", var.billing_account))
    error_message = "billing_account must be empty or look like 012345-6789AB-CDEF01."
  }
}

variable "monthly_budget" {
  description = "Monthly budget of this environment's project, in budget_currency."
  type        = number
}

variable "budget_currency" {
  description = "Currency of monthly_budget (must be the billing account's currency)."
  type        = string
  default     = "USD"
}

# --- Serving (used by the serving mode of this project) ---------------------------------------------------------

variable "min_instances" {
  description = "Minimum number of serving instances (0 scales to zero when idle; 1+ avoids cold starts)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Maximum number of serving instances: the cost ceiling of a traffic spike."
  type        = number
  default     = 3
}

variable "cpu" {
  description = "vCPUs per serving container (Cloud Run `limits.cpu`)."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory per serving container (Cloud Run `limits.memory`)."
  type        = string
  default     = "1Gi"
}

variable "concurrency" {
  description = "Concurrent requests per Cloud Run instance before it scales out."
  type        = number
  default     = 40
}

variable "ingress" {
  description = "Who can reach the Cloud Run service over the network: INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER. IAM still decides who may invoke it."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "invoker_members" {
  description = "IAM members allowed to call the service (for example serviceAccount:frontend@<project>.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "Do not list allUsers/allAuthenticatedUsers in invoker_members: set allow_unauthenticated = true to make the service public on purpose."
  }
}

variable "allow_unauthenticated" {
  description = "Make the service public (grants roles/run.invoker to allUsers). Off by default: callers need an identity token of an invoker_members identity."
  type        = bool
  default     = false
}

variable "batch_schedule" {
  description = "Cron schedule (UTC) of the batch scoring job."
  type        = string
  default     = "0 3 * * *"
}

variable "batch_input_path" {
  description = "Object path in the data bucket that the batch job scores (BATCH_INPUT_URI, .csv or .parquet)."
  type        = string
  default     = "batch/input/records.csv"
}

variable "batch_output_path" {
  description = "Object path in the data bucket where the batch job writes its predictions (BATCH_OUTPUT_URI, .csv or .parquet); the job may write only in its folder."
  type        = string
  default     = "batch/output/predictions.csv"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)+\\.(csv|parquet)$", var.batch_output_path))
    error_message = "batch_output_path must be a .csv or .parquet object path inside a folder, for example batch/output/predictions.csv."
  }
}

variable "batch_engine" {
  description = "Where batch scoring runs. serving = batch: container (the Cloud Run job, streamed) or spark (Dataproc Serverless, spark_batch.tf); serving = kubernetes: container (the CronJob) or spark (the Spark Operator on the cluster, deploy/kubernetes/components/spark)."
  type        = string
  default     = "container"

  validation {
    condition     = contains(["container", "spark"], var.batch_engine)
    error_message = "batch_engine is container or spark."
  }
}

variable "batch_timeout" {
  description = "Maximum run time of one batch task."
  type        = string
  default     = "3600s"
}

# --- Alerting (used when monitoring is enabled) -----------------------------------------------------------------

variable "alert_error_rate" {
  description = "Share of failed requests (5xx, or prediction errors on Vertex AI) above which an alert fires."
  type        = number
  default     = 0.05
}

variable "alert_latency_p95_ms" {
  description = "p95 request latency, in milliseconds, above which an alert fires."
  type        = number
  default     = 500
}
