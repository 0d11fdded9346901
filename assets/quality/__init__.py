"""Quality: how good a batch's annotations are, measured against gold and against each other.

Every function takes a batch's annotation rows (a pandas DataFrame: task_id, item_id, annotator,
ground_truth, lead_time and the modality's value column: label, transcript, boxes or part_labels).
Rows with ground_truth=True are the reviewed references; every annotator measure leaves them out.
"""
