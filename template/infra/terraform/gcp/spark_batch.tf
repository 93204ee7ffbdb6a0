# Batch scoring on Spark (var.batch_engine = "spark"): the schedule of serving_batch.tf creates a Dataproc Serverless
# batch instead of running the Cloud Run job. The batch runs `python -m <package>.spark_batch` (the same scoring core
# as the Cloud Run job, in Spark's mapInArrow) from the image Dockerfile.spark builds for gcp: the project's package,
# the `batch` group's dependencies and the champion model on Debian; Dataproc mounts its Spark and Java into it at
# run time. Created once var.image_tag is set; CD pushes <image>:<tag>-spark when envs/staging.tfvars says spark.
#
# Why Dataproc Serverless: no cluster to size, patch or stop; billed per run, capped by spark_max_executors; the
# input and output stay in the data bucket, reached over Private Google Access from a subnet with no route out.
# Why Cloud Scheduler calling the batches API (rather than Workflows): the schedule only has to create the batch,
# one authenticated POST; Dataproc runs, retries nothing and records the outcome (a failed batch is an error entry
# in Cloud Logging that the batch alerts see). Waiting for the end is the manual path's job (make spark-batch-submit).

variable "spark_runtime_version" {
  description = "Dataproc Serverless runtime of the batch (its Spark and Java; 2.2 is Spark 3.5, as pyspark in the Makefile)."
  type        = string
  default     = "2.2"
}

variable "spark_max_executors" {
  description = "Most executors (4 vCPUs each by default) one batch may hold at once: the cost ceiling of one run."
  type        = number
  default     = 4
}

variable "spark_subnet_cidr" {
  description = "Address range of the Spark batch's private subnet (Private Google Access, no route to the internet)."
  type        = string
  default     = "10.30.0.0/24"
}

locals {
  spark_enabled = var.batch_engine == "spark"
  spark_count   = local.spark_enabled ? 1 : 0
  spark_image   = "${local.image_repository}:${var.image_tag}-spark"
  data_bucket   = google_storage_bucket.this["data"].name
  # The predictions, their rejects (<stem>.rejects.<ext>) and the validation report: one folder of the data bucket.
  spark_output_prefix = "projects/_/buckets/${local.data_bucket}/objects/${local.batch_output_folder}"
  spark_input_prefix  = "projects/_/buckets/${local.data_bucket}/objects/${var.batch_input_path}"
  dataproc_agent      = "serviceAccount:service-${local.project_number}@dataproc-accounts.iam.gserviceaccount.com"
  compute_agent       = "serviceAccount:service-${local.project_number}@compute-system.iam.gserviceaccount.com"
  # The batches.create request, as the schedule sends it (and `make spark-batch-submit`, from the output below).
  spark_batch_request = {
    pysparkBatch = {
      mainPythonFileUri = "file:///opt/app/score.py"
      args = [
        "--input", "gs://${local.data_bucket}/${var.batch_input_path}",
        "--output", "gs://${local.data_bucket}/${var.batch_output_path}",
      ]
    }
    runtimeConfig = {
      version        = var.spark_runtime_version
      containerImage = local.spark_image
      properties = {
        # one task per core: onnxruntime runs single-threaded in each (scoring/model.py)
        "spark.sql.session.timeZone"           = "UTC"
        "spark.task.cpus"                      = "1"
        "spark.dynamicAllocation.maxExecutors" = tostring(var.spark_max_executors)
      }
    }
    environmentConfig = {
      executionConfig = {
        serviceAccount = one(google_service_account.spark[*].email)
        subnetworkUri  = one(google_compute_subnetwork.spark[*].id)
        kmsKey         = google_kms_crypto_key.this.id
        stagingBucket  = one(google_storage_bucket.spark_staging[*].name)
        ttl            = var.batch_timeout
      }
    }
    labels = local.labels
  }
}

resource "google_project_service" "spark" {
  for_each = local.spark_enabled ? toset(["dataproc.googleapis.com", "compute.googleapis.com"]) : toset([])

  project            = var.gcp_project_id
  service            = each.value
  disable_on_destroy = false
}

# --- Network: a private subnet; Google APIs (Cloud Storage, Artifact Registry, Logging) over Private Google Access.

resource "google_compute_network" "spark" {
  count = local.spark_count

  name                    = "${local.name}-spark"
  auto_create_subnetworks = false

  depends_on = [google_project_service.spark]
}

resource "google_compute_subnetwork" "spark" {
  count = local.spark_count

  name                     = "${local.name}-spark"
  network                  = google_compute_network.spark[0].id
  region                   = var.region
  ip_cidr_range            = var.spark_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Dataproc Serverless needs the driver and executors of one batch to reach each other on every port; nothing else
# connects in (the lower-priority rule denies it, and is logged).
resource "google_compute_firewall" "spark_internal" {
  count = local.spark_count

  name          = "${local.name}-spark-internal"
  network       = google_compute_network.spark[0].id
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = [var.spark_subnet_cidr]

  allow {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "spark_deny_ingress" {
  count = local.spark_count

  name          = "${local.name}-spark-deny-ingress"
  network       = google_compute_network.spark[0].id
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# --- Staging bucket: Dataproc's own files of each batch (its dependencies and event logs), kept 30 days.

resource "google_storage_bucket" "spark_staging" {
  count = local.spark_count

  name                        = "${var.project}-spark-${var.environment}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.this.id
  }

  logging {
    log_bucket        = google_storage_bucket.access_logs.name
    log_object_prefix = "spark"
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# --- The batch's identity: read the input, write the output folder, Dataproc's worker role, nothing else. The model
# is in the image (Dockerfile.spark), so the batch reads no model bucket.

resource "google_service_account" "spark" {
  count = local.spark_count

  account_id   = "${local.id_base}-spark"
  display_name = "${local.name} Spark batch"
  description  = "Runs the Dataproc Serverless batches that score ${var.batch_input_path} into ${var.batch_output_path}."
}

# roles/dataproc.worker is what Dataproc Serverless requires of a batch's service account (its agent reports and
# stages files through it). It includes object access on the project's buckets, for Dataproc's staging: keep this
# project for this model's stack alone (README.md), or add an IAM deny policy on the model bucket where it is shared.
resource "google_project_iam_member" "spark_worker" {
  for_each = local.spark_enabled ? toset(["roles/dataproc.worker", "roles/logging.logWriter"]) : toset([])

  project = var.gcp_project_id
  role    = each.value
  member  = google_service_account.spark[0].member
}

# The input's objects, and the bucket itself so Spark can list the input prefix (names only).
resource "google_storage_bucket_iam_member" "spark_reads_input" {
  count = local.spark_count

  bucket = local.data_bucket
  role   = "roles/storage.objectViewer"
  member = google_service_account.spark[0].member

  condition {
    title      = "batch-input-prefix-and-listing"
    expression = "resource.type == \"storage.googleapis.com/Bucket\" || resource.name.startsWith(\"${local.spark_input_prefix}\")"
  }
}

# Spark's committer writes part files under <output>/_temporary/ and moves them; an overwrite deletes first.
resource "google_storage_bucket_iam_member" "spark_writes_output" {
  count = local.spark_count

  bucket = local.data_bucket
  role   = "roles/storage.objectUser"
  member = google_service_account.spark[0].member

  condition {
    title      = "batch-output-prefix-only"
    expression = "resource.name.startsWith(\"${local.spark_output_prefix}\")"
  }
}

resource "google_storage_bucket_iam_member" "spark_staging" {
  count = local.spark_count

  bucket = google_storage_bucket.spark_staging[0].name
  role   = "roles/storage.objectUser"
  member = google_service_account.spark[0].member
}

# Dataproc and Compute Engine encrypt the batch's disks and staging files with the project's key.
resource "google_kms_crypto_key_iam_member" "spark_agents" {
  for_each = local.spark_enabled ? { dataproc = local.dataproc_agent, compute = local.compute_agent } : {}

  crypto_key_id = google_kms_crypto_key.this.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value

  depends_on = [google_project_service.spark]
}

# --- Who may create batches: the schedule's identity (serving_batch.tf) and CI (make spark-batch-submit), with a
# role of exactly the two permissions they use, each allowed to run batches as the Spark identity only.

resource "google_project_iam_custom_role" "spark_submitter" {
  count = local.spark_count

  role_id     = "${replace(local.name, "-", "_")}_spark_submitter"
  title       = "${local.name} Spark batch submitter"
  description = "Creates and watches the Dataproc Serverless batches of ${local.name}."
  permissions = ["dataproc.batches.create", "dataproc.batches.get"]
}

resource "google_project_iam_member" "spark_submitters" {
  for_each = local.spark_enabled ? {
    scheduler = google_service_account.scheduler.member
    ci        = google_service_account.ci.member
  } : {}

  project = var.gcp_project_id
  role    = google_project_iam_custom_role.spark_submitter[0].id
  member  = each.value
}

resource "google_service_account_iam_member" "spark_submitters_act_as_spark" {
  for_each = local.spark_enabled ? {
    scheduler = google_service_account.scheduler.member
    ci        = google_service_account.ci.member
  } : {}

  service_account_id = google_service_account.spark[0].name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}

output "spark_batch_job" {
  description = "batch_engine = spark: what `make spark-batch-submit` submits (the schedule's batches.create request, its parent and the output); null otherwise."
  value = local.spark_enabled ? {
    engine  = "dataproc-serverless"
    parent  = "projects/${var.gcp_project_id}/locations/${var.region}"
    request = local.spark_batch_request
    output  = "gs://${local.data_bucket}/${var.batch_output_path}"
  } : null
}
