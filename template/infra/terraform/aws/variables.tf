# Project identity (project.auto.tfvars, written by the template)

variable "project" {
  description = "Project slug: prefix of every resource name (<project>-<environment>[-suffix])."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.project))
    error_message = "project must be 3 to 24 lowercase letters, digits and hyphens."
  }
}

variable "orchestrator" {
  description = "orchestrator = airflow (the copier answer) adds MWAA's DAG bucket to the project's buckets; dvc, kubeflow and sagemaker need none (the default)."
  type        = string
  default     = "dvc"

  validation {
    condition     = contains(["dvc", "airflow", "kubeflow", "sagemaker"], var.orchestrator)
    error_message = "orchestrator must be dvc, airflow, kubeflow or sagemaker."
  }
}

variable "feature_store" {
  description = "The template's feature_store answer: with feast, the contract's feature view gets its online table (feature_store.tf)."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "feast"], var.feature_store)
    error_message = "feature_store must be none or feast."
  }
}

variable "package_name" {
  description = "Python package of the project; the batch job runs `python -m <package_name>.batch`."
  type        = string
}

variable "region" {
  description = "AWS region of every resource."
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
  description = "Owner tag of every resource (the owning team's e-mail)."
  type        = string
}

variable "cost_center" {
  description = "cost_center tag of every resource, for cost allocation."
  type        = string
}

variable "alert_email" {
  description = "E-mail address that receives budget alerts and alarm notifications."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an e-mail address."
  }
}

variable "github_repository" {
  description = "GitHub repository (<org>/<name>) whose workflows may assume the CI roles through OIDC."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be <org>/<name> without wildcards."
  }
}

# Deployment

variable "image_tag" {
  description = "Image tag to serve (the git SHA pushed by CD). Empty: no serving resources yet (first apply)."
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

variable "state_bucket" {
  description = "S3 bucket that holds this environment's Terraform state (envs/<environment>.backend.hcl)."
  type        = string
}

variable "create_image_repository" {
  description = "Create the image repository shared by the environments (true in the stack CD pushes to: staging)."
  type        = bool
  default     = true
}

variable "registry_account_id" {
  description = "AWS account of the image repository when another environment's stack owns it; \"\": this account."
  type        = string
  default     = ""
}

variable "registry_pull_account_ids" {
  description = "Other AWS accounts (e.g. production's) allowed to pull from the image repository this stack owns."
  type        = list(string)
  default     = []
}

variable "create_main_branch_role" {
  description = "Create the ci-main role for main-branch jobs without an environment (image build, DVC, drift)."
  type        = bool
  default     = false
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider. Set false when another stack in the account owns it."
  type        = bool
  default     = true
}

# Storage and logs

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version is kept in the data and model buckets."
  type        = number
  default     = 90
}

variable "access_log_retention_days" {
  description = "Days S3, load-balancer and VPC flow logs are kept in the log bucket."
  type        = number
  default     = 365
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (at least a year, for incident and audit look-back)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "ecr_untagged_image_days" {
  description = "Days after which untagged images are removed from the registry."
  type        = number
  default     = 14
}

variable "ecr_max_images" {
  description = "Number of tagged images kept in the registry (older ones are removed; rollback targets stay)."
  type        = number
  default     = 50
}

# Cost

variable "monthly_budget_usd" {
  description = "Monthly cost budget of the environment in USD; alerts at 80% actual and 100% forecast."
  type        = number
}

variable "batch_engine" {
  description = "Where batch scoring runs. serving = batch: container (one ECS Fargate task, streamed) or spark (EMR Serverless, spark_batch.tf); serving = kubernetes: container (the CronJob) or spark (the Spark Operator on the cluster, deploy/kubernetes/components/spark)."
  type        = string
  default     = "container"

  validation {
    condition     = contains(["container", "spark"], var.batch_engine)
    error_message = "batch_engine is container or spark."
  }
}
