# Buckets: data (the DVC remote, batch input/output, inference logs) and models (versioned model artifacts), plus
# the bucket that receives their access logs. All of them: CMEK, uniform bucket-level access (IAM only, no ACLs),
# public access prevention enforced, object versioning and lifecycle rules. Cloud Storage serves its JSON and XML
# APIs over HTTPS only, so encryption in transit needs no bucket setting.

locals {
  buckets = {
    data   = "${var.project}-data-${var.environment}" # the DVC remote is gs://<project>-data-staging/dvc
    models = "${var.project}-models-${var.environment}"
  }
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This bucket is the destination of the access logs; logging it would log into itself (CKV_GCP_63).
  name                        = "${var.project}-access-logs-${var.environment}"
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

  lifecycle_rule {
    condition {
      age = var.log_retention_days
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

# Cloud Storage writes usage logs as this Google group (documented behaviour of GCS usage logs).
resource "google_storage_bucket_iam_member" "access_logs_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

resource "google_storage_bucket" "this" {
  for_each = local.buckets

  name                        = each.value
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
    log_object_prefix = each.key
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_days * 86400
  }

  # Replaced or deleted versions stay restorable for noncurrent_version_days, then go.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }

  # Never keep more than 5 older versions of one object (models/champion/model.joblib is overwritten on promotion).
  lifecycle_rule {
    condition {
      num_newer_versions = 5
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.service_agents]
}

# A new bucket grants the project's viewers roles/storage.legacyObjectReader (a "convenience value"), so any project
# viewer, the pull-request plan identity included, could read every object. This binding is authoritative for that
# role: it leaves it to the project owners, who hold legacyObjectOwner anyway. Object access to data and models is
# granted explicitly, to the identities that need it (identity.tf, serving_<mode>.tf).
resource "google_storage_bucket_iam_binding" "objects_not_for_project_viewers" {
  for_each = local.buckets

  bucket  = google_storage_bucket.this[each.key].name
  role    = "roles/storage.legacyObjectReader"
  members = ["projectOwner:${var.gcp_project_id}"]
}
