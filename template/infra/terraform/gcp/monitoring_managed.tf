# Monitoring of the Vertex AI endpoint (created with it): alerts on prediction errors and latency, mailed to
# alert_email, and a dashboard. The thresholds follow monitoring/slo.yaml (availability 99.5 %, 500 ms latency).

locals {
  endpoint_filter = "resource.type = \"aiplatform.googleapis.com/Endpoint\" AND resource.labels.endpoint_id = \"${local.vertex_endpoint_id}\""
}

resource "google_monitoring_alert_policy" "endpoint_errors" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: prediction error rate above ${var.alert_error_rate * 100}%"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "Share of failed online predictions over 5 minutes"
    condition_threshold {
      filter             = "${local.endpoint_filter} AND metric.type = \"aiplatform.googleapis.com/prediction/online/error_count\""
      denominator_filter = "${local.endpoint_filter} AND metric.type = \"aiplatform.googleapis.com/prediction/online/prediction_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_error_rate
      duration           = "120s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.endpoint_id"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.endpoint_id"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.alert_error_rate * 100}% of online predictions of the ${local.name} Vertex AI endpoint fail. Runbook: ${local.runbook_base_url}/alerts/high-error-rate.md"
  }
}

resource "google_monitoring_alert_policy" "endpoint_latency" {
  count = local.serving_enabled ? 1 : 0

  display_name          = "${local.name}: p95 prediction latency above ${var.alert_latency_p95_ms} ms"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]
  user_labels           = local.labels

  conditions {
    display_name = "p95 online prediction latency over 5 minutes"
    condition_threshold {
      filter          = "${local.endpoint_filter} AND metric.type = \"aiplatform.googleapis.com/prediction/online/prediction_latencies\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_latency_p95_ms
      duration        = "600s"

      # One series per latency type (model, overhead, total): total is the largest, so it trips first.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
        group_by_fields      = ["resource.label.endpoint_id", "metric.label.latency_type"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The 95th percentile online prediction latency of ${local.name} is above ${var.alert_latency_p95_ms} ms. Runbook: ${local.runbook_base_url}/alerts/latency.md"
  }
}

resource "google_monitoring_dashboard" "endpoint" {
  count = local.serving_enabled ? 1 : 0

  dashboard_json = jsonencode({
    displayName = "${local.name} serving"
    labels      = local.labels
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in [
        { title = "Predictions per second", metric = "aiplatform.googleapis.com/prediction/online/prediction_count", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = [] },
        { title = "Errors per second", metric = "aiplatform.googleapis.com/prediction/online/error_count", aligner = "ALIGN_RATE", reducer = "REDUCE_SUM", group_by = [] },
        { title = "Prediction latency p95 (ms)", metric = "aiplatform.googleapis.com/prediction/online/prediction_latencies", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_95", group_by = ["metric.label.latency_type"] },
        { title = "Replicas", metric = "aiplatform.googleapis.com/prediction/online/replicas", aligner = "ALIGN_MAX", reducer = "REDUCE_SUM", group_by = [] },
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
                  filter = "${local.endpoint_filter} AND metric.type = \"${chart.metric}\""
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
