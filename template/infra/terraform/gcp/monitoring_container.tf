# Monitoring of the Cloud Run service (created with it): alerts on server errors, latency and saturation, mailed to
# alert_email, and a dashboard. The thresholds follow monitoring/slo.yaml (availability 99.5 %, 500 ms latency).

locals {
  run_service_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${local.name}\""
}

resource "google_monitoring_alert_policy" "api_errors" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: 5xx rate above ${var.alert_error_rate * 100}%"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Share of 5xx responses over 5 minutes"
    condition_threshold {
      filter             = "${local.run_service_filter} AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      denominator_filter = "${local.run_service_filter} AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_error_rate
      duration           = "120s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The ${local.name} Cloud Run service answers more than ${var.alert_error_rate * 100}% of requests with a server error. Runbook: ${local.runbook_base_url}/alerts/high-error-rate.md"
  }
}

resource "google_monitoring_alert_policy" "api_latency" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: p95 latency above ${var.alert_latency_p95_ms} ms"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "p95 request latency over 5 minutes"
    condition_threshold {
      filter          = "${local.run_service_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_latency_p95_ms
      duration        = "600s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The 95th percentile latency of ${local.name} is above ${var.alert_latency_p95_ms} ms. Runbook: ${local.runbook_base_url}/alerts/latency.md"
  }
}

resource "google_monitoring_alert_policy" "api_saturation" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: running at max instances"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Instance count at max_instances for 15 minutes"
    condition_threshold {
      filter          = "${local.run_service_filter} AND metric.type = \"run.googleapis.com/container/instance_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.max_instances - 0.5
      duration        = "900s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${local.name} has run at its ceiling of ${var.max_instances} instances for 15 minutes: requests queue and latency grows. Raise max_instances in envs/${var.environment}.tfvars if the traffic is legitimate. Runbook: ${local.runbook_base_url}/alerts/latency.md"
  }
}

resource "google_monitoring_dashboard" "api" {
  count = local.serving_enabled ? 1 : 0

  dashboard_json = jsonencode({
    displayName = "${local.name} serving"
    labels      = local.labels
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in [
        { title = "Requests per second by response class", metric = "run.googleapis.com/request_count", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = ["metric.label.response_code_class"] },
        { title = "Request latency p95 (ms)", metric = "run.googleapis.com/request_latencies", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = [] },
        { title = "Instances", metric = "run.googleapis.com/container/instance_count", aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = ["metric.label.state"] },
        { title = "CPU utilisation p95", metric = "run.googleapis.com/container/cpu/utilizations", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = [] },
        { title = "Memory utilisation p95", metric = "run.googleapis.com/container/memory/utilizations", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = [] },
        { title = "Startup latency p95 (ms)", metric = "run.googleapis.com/container/startup_latencies", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = [] },
        ] : {
        xPos   = (index % 2) * 6
        yPos   = floor(index / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "${local.run_service_filter} AND metric.type = \"${chart.metric}\""
                  aggregation = {
                    alignmentPeriod    = "60s"
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
