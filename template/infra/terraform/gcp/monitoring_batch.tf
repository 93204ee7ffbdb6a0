# Monitoring of the batch job (created with it): alerts when an execution fails or Cloud Scheduler cannot start it,
# mailed to alert_email, and a dashboard.

locals {
  run_job_filter = "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"${local.batch_job_name}\""
  batch_runbook  = <<-EOT
    1. Open the failed execution: `gcloud run jobs executions list --job ${local.batch_job_name} --region ${var.region}`,
       then its logs (the log bucket ${local.name}).
    2. Exit code 1: the input broke the data contract. Nothing was scored; the report naming every failing rule and
       row is `gs://${local.buckets.data}/${var.batch_output_path}.validation.json`. Fix the input, then
       `gcloud run jobs execute ${local.batch_job_name} --region ${var.region}`.
    3. Exit code 2: bad usage or missing model: check BATCH_INPUT_URI/BATCH_OUTPUT_URI and the image tag deployed.
    4. Out of memory or timeout: raise memory or batch_timeout in envs/${var.environment}.tfvars and deploy.
  EOT
}

resource "google_monitoring_alert_policy" "batch_failed" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: batch scoring execution failed"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Failed executions of ${local.batch_job_name}"
    condition_threshold {
      filter          = "${local.run_job_filter} AND metric.type = \"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.job_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An execution of the ${local.batch_job_name} Cloud Run job failed: today's predictions are missing.\n\n${local.batch_runbook}"
  }
}

resource "google_monitoring_alert_policy" "batch_not_started" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: batch scoring schedule failed to start the job"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Cloud Scheduler errors for ${local.batch_job_name}"
    condition_matched_log {
      filter = "resource.type = \"cloud_scheduler_job\" AND resource.labels.job_id = \"${local.batch_job_name}\" AND severity >= ERROR"
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Cloud Scheduler could not start ${local.batch_job_name} (see the scheduler job's logs): usually the ${google_service_account.scheduler.email} identity lost roles/run.invoker on the job, or the job does not exist. Re-apply the Terraform, then start it by hand.\n\n${local.batch_runbook}"
  }
}

resource "google_monitoring_dashboard" "batch" {
  count = local.serving_enabled ? 1 : 0

  dashboard_json = jsonencode({
    displayName = "${local.name} batch scoring"
    labels      = local.labels
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in [
        { title = "Completed executions by result", metric = "run.googleapis.com/job/completed_execution_count", aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group_by = ["metric.label.result"] },
        { title = "Completed task attempts by result", metric = "run.googleapis.com/job/completed_task_attempt_count", aligner = "ALIGN_DELTA", reducer = "REDUCE_SUM", group_by = ["metric.label.result"] },
        ] : {
        xPos   = (index % 2) * 6
        yPos   = 0
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = {
            dataSets = [{
              plotType = "STACKED_BAR"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "${local.run_job_filter} AND metric.type = \"${chart.metric}\""
                  aggregation = {
                    alignmentPeriod    = "3600s"
                    perSeriesAligner   = chart.aligner
                    crossSeriesReducer = chart.reducer
                    groupByFields      = chart.group_by
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })
}
