# tracking_server = self_hosted: the shared MLflow tracking server and model registry of this environment.
#
#   clients -(HTTPS, Google identity)-> IAP -> Cloud Run `mlflow` (Direct VPC egress) -> Cloud SQL for PostgreSQL
#   (private IP only) ; artefacts in a bucket of its own (KMS), served through MLflow (`--serve-artifacts`).
#
# - Who gets in: Identity-Aware Proxy in front of the Cloud Run service admits the principals of
#   var.tracking_iap_members (people, groups, the organisation's domain) and CI's service account. GitHub Actions
#   impersonates that service account through Workload Identity Federation (identity.tf) and mints a Google-signed
#   identity token for output.tracking_audience (.github/actions/tracking-auth): no key, nothing long-lived.
# - Backend store: Cloud SQL PostgreSQL 16 with private IP only, TLS required, encrypted with the project's key,
#   daily backups with point-in-time recovery (35 kept in production), deletion protection in production. Its
#   password is a Secret Manager secret the administrator creates once (README.md); Cloud Run reads it at start.
# - Artefacts: only the server's service account holds an object role on the bucket.
#
# Nothing is created when var.tracking_server_url names the organisation's existing server (tracking_uri is then that
# URL), nor before var.tracking_server_image is set: tracking_uri is then "".

variable "tracking_server_url" {
  description = "HTTPS URL of the organisation's existing MLflow server: set, this stack creates no tracking server and points clients at it. \"\": the stack runs its own."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_url == "" || can(regex("^https://[^/\\s]+(/.*)?$", var.tracking_server_url))
    error_message = "tracking_server_url must be an https:// URL (or \"\" to create the server)."
  }
}

variable "tracking_server_audience" {
  description = "Audience of CI's identity token: what IAP expects (the service URL with Cloud Run's built-in IAP, the OAuth client id behind a load balancer). \"\": the tracking URI."
  type        = string
  default     = ""
}

variable "tracking_server_image" {
  description = "MLflow server image by digest (<repository>@sha256:<64 hex>), with psycopg2 and google-cloud-storage installed; push it to this environment's Artifact Registry."
  type        = string
  default     = ""

  validation {
    condition     = var.tracking_server_image == "" || can(regex("^[^@\\s]+@sha256:[0-9a-f]{64}$", var.tracking_server_image))
    error_message = "tracking_server_image must be pinned by digest: <repository>@sha256:<64 lowercase hex digits>."
  }
}

variable "tracking_iap_members" {
  description = "Principals IAP admits to the tracking server besides CI's service account, e.g. [\"group:ml-team@example.com\", \"domain:example.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.tracking_iap_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "tracking_iap_members must name people, groups or a domain, never allUsers or allAuthenticatedUsers."
  }
}

variable "tracking_db_password_secret" {
  description = "Secret Manager secret (id in this project) holding the PostgreSQL password of the mlflow user, created once by an administrator."
  type        = string
  default     = "mlflow-db-password"
}

variable "tracking_db_tier" {
  description = "Cloud SQL machine tier of the backend store."
  type        = string
  default     = "db-custom-1-3840"
}

variable "tracking_subnet_cidr" {
  description = "CIDR of the subnet Cloud Run's Direct VPC egress uses to reach Cloud SQL."
  type        = string
  default     = "10.42.0.0/24"
}

locals {
  tracking_create     = var.tracking_server_url == "" && var.tracking_server_image != ""
  tracking_production = var.environment == "production"
  tracking_count      = local.tracking_create ? 1 : 0
  tracking_bucket     = "${var.project}-mlflow-${var.environment}"
  tracking_uri = (
    var.tracking_server_url != "" ? trimsuffix(var.tracking_server_url, "/")
    : local.tracking_create ? google_cloud_run_v2_service.tracking[0].uri : ""
  )
  tracking_audience = var.tracking_server_audience != "" ? var.tracking_server_audience : local.tracking_uri
  tracking_apis     = ["compute.googleapis.com", "iap.googleapis.com", "run.googleapis.com", "secretmanager.googleapis.com", "servicenetworking.googleapis.com", "sqladmin.googleapis.com"]
  cloud_sql_agent   = "serviceAccount:service-${local.project_number}@gcp-sa-cloud-sql.iam.gserviceaccount.com"
  iap_agent         = "serviceAccount:service-${local.project_number}@gcp-sa-iap.iam.gserviceaccount.com"
}

resource "google_project_service" "tracking" {
  for_each = local.tracking_create ? toset(local.tracking_apis) : toset([])

  project            = var.gcp_project_id
  service            = each.value
  disable_on_destroy = false
}

# Network: a VPC of its own, peered with Google's service network for Cloud SQL's private IP.

resource "google_compute_network" "tracking" {
  count = local.tracking_count

  name                    = "${local.name}-tracking"
  auto_create_subnetworks = false

  depends_on = [google_project_service.tracking]
}

# Nothing may connect into the network: Cloud Run only sends to Cloud SQL through it.
resource "google_compute_firewall" "tracking_deny_ingress" {
  count = local.tracking_count

  name      = "${local.name}-tracking-deny-ingress"
  network   = google_compute_network.tracking[0].id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "tracking" {
  count = local.tracking_count

  name                     = "${local.name}-tracking"
  network                  = google_compute_network.tracking[0].id
  region                   = var.region
  ip_cidr_range            = var.tracking_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_global_address" "tracking_sql" {
  count = local.tracking_count

  name          = "${local.name}-tracking-sql"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.tracking[0].id
}

resource "google_service_networking_connection" "tracking" {
  count = local.tracking_count

  network                 = google_compute_network.tracking[0].id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.tracking_sql[0].name]
}

# Backend store

resource "google_kms_crypto_key_iam_member" "tracking_sql" {
  count = local.tracking_count

  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = local.cloud_sql_agent

  depends_on = [google_project_service.tracking]
}

resource "google_sql_database_instance" "tracking" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses every connection without TLS; client certificates are not used because only the server's private network reaches the instance.
  #checkov:skip=CKV_GCP_79:The major version is pinned on purpose (MLflow's migrations are tested against it); a major upgrade is a deliberate change with a backup first.
  count = local.tracking_count

  name                = "${local.name}-tracking"
  database_version    = "POSTGRES_16"
  region              = var.region
  encryption_key_name = google_kms_crypto_key.this.id
  deletion_protection = local.tracking_production

  settings {
    tier                        = var.tracking_db_tier
    edition                     = "ENTERPRISE"
    availability_type           = local.tracking_production ? "REGIONAL" : "ZONAL"
    deletion_protection_enabled = local.tracking_production
    user_labels                 = local.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = google_compute_network.tracking[0].id
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"

      backup_retention_settings {
        retained_backups = local.tracking_production ? 35 : 7
      }
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    # CIS: statements are not logged with their text (they may carry data); their durations are.
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_duration"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.tracking, google_kms_crypto_key_iam_member.tracking_sql]
}

resource "google_sql_database" "mlflow" {
  count = local.tracking_count

  name     = "mlflow"
  instance = google_sql_database_instance.tracking[0].name
}

data "google_secret_manager_secret_version" "tracking_db_password" {
  count = local.tracking_count

  project = var.gcp_project_id
  secret  = var.tracking_db_password_secret
}

resource "google_sql_user" "mlflow" {
  count = local.tracking_count

  name     = "mlflow"
  instance = google_sql_database_instance.tracking[0].name
  password = data.google_secret_manager_secret_version.tracking_db_password[0].secret_data
}

# Artefact store: only the server's service account holds an object role.

resource "google_storage_bucket" "tracking" {
  count = local.tracking_count

  name                        = local.tracking_bucket
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = "mlflow"
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

resource "google_storage_bucket_iam_binding" "tracking_not_for_project_viewers" {
  count = local.tracking_count

  bucket  = google_storage_bucket.tracking[0].name
  role    = "roles/storage.legacyObjectReader"
  members = ["projectOwner:${var.gcp_project_id}"]
}

resource "google_service_account" "tracking" {
  count = local.tracking_count

  account_id   = "${local.id_base}-mlflow"
  display_name = "${local.name} MLflow server"
  description  = "Runs the MLflow tracking server of ${var.project} in ${var.environment}: its artefact bucket and database password."
}

resource "google_storage_bucket_iam_member" "tracking_artefacts" {
  count = local.tracking_count

  bucket = google_storage_bucket.tracking[0].name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.tracking[0].member
}

resource "google_secret_manager_secret_iam_member" "tracking_db_password" {
  count = local.tracking_count

  project   = var.gcp_project_id
  secret_id = var.tracking_db_password_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.tracking[0].member
}

# The server: Cloud Run with IAP in front; only IAP may invoke it.

resource "google_cloud_run_v2_service" "tracking" {
  count = local.tracking_count

  name                = "${local.name}-mlflow"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  iap_enabled         = true
  launch_stage        = "BETA"
  deletion_protection = local.tracking_production
  labels              = local.labels

  template {
    service_account = google_service_account.tracking[0].email

    scaling {
      min_instance_count = 1
      max_instance_count = local.tracking_production ? 3 : 1
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"

      network_interfaces {
        network    = google_compute_network.tracking[0].id
        subnetwork = google_compute_subnetwork.tracking[0].id
      }
    }

    containers {
      image = var.tracking_server_image
      args = [
        "mlflow", "server", "--host", "0.0.0.0", "--port", "8080", "--workers", "2",
        "--backend-store-uri", "postgresql://mlflow@${google_sql_database_instance.tracking[0].private_ip_address}:5432/mlflow?sslmode=require",
        "--artifacts-destination", "gs://${local.tracking_bucket}/artifacts", "--serve-artifacts",
      ]

      ports {
        container_port = 8080
      }

      resources {
        limits = { cpu = "1", memory = "2Gi" }
      }

      # libpq reads the password from PGPASSWORD: never in the command or the URI.
      env {
        name = "PGPASSWORD"
        value_source {
          secret_key_ref {
            secret  = var.tracking_db_password_secret
            version = "latest"
          }
        }
      }

      env {
        name  = "MLFLOW_DISABLE_TELEMETRY"
        value = "true"
      }

      startup_probe {
        http_get {
          path = "/health"
        }
      }

      liveness_probe {
        http_get {
          path = "/health"
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.tracking_db_password, google_sql_user.mlflow, google_project_service.tracking]
}

# IAP calls the service as its service agent: the only invoker.
resource "google_cloud_run_v2_service_iam_member" "tracking_iap_invoker" {
  count = local.tracking_count

  name     = google_cloud_run_v2_service.tracking[0].name
  location = var.region
  role     = "roles/run.invoker"
  member   = local.iap_agent
}

# Who IAP lets in: the listed people and groups, and CI's service account.
resource "google_iap_web_cloud_run_service_iam_member" "tracking" {
  for_each = local.tracking_create ? merge({ for member in var.tracking_iap_members : member => member }, { ci = google_service_account.ci.member }) : {}

  project                = var.gcp_project_id
  location               = var.region
  cloud_run_service_name = google_cloud_run_v2_service.tracking[0].name
  role                   = "roles/iap.httpsResourceAccessor"
  member                 = each.value
}

output "tracking_uri" {
  description = "MLFLOW_TRACKING_URI of every client (the repository variable of the same name); \"\" until the server exists."
  value       = local.tracking_uri
}

output "tracking_audience" {
  description = "Audience of the identity token CI sends to IAP (.github/actions/tracking-auth, repository variable MLFLOW_TRACKING_AUDIENCE)."
  value       = local.tracking_audience
}
