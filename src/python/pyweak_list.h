/*
 * pyweak_list.h — every CPython symbol libcpyprof.so references, declared weak
 * (see pyapi.h for why). Regenerate after using a new API function:
 *   nm -D --undefined-only build/libcpyprof.so | awk '$1=="U"{print $2}' | grep -E "^_?Py"
 * tests/unit/test_weak_symbols checks that the list is complete.
 */
#ifndef CPYPROF_PYTHON_PYWEAK_LIST_H
#define CPYPROF_PYTHON_PYWEAK_LIST_H
#pragma weak PyArg_UnpackTuple
#pragma weak PyCallable_Check
#pragma weak PyCFunction_Type
#pragma weak PyCMethod_New
#pragma weak PyDict_GetItemWithError
#pragma weak PyErr_Clear
#pragma weak PyErr_ExceptionMatches
#pragma weak PyErr_Fetch
#pragma weak PyErr_Restore
#pragma weak PyEval_SetProfile
#pragma weak PyExc_SystemExit
#pragma weak PyImport_GetModule
#pragma weak PyImport_ImportModule
#pragma weak PyInterpreterState_ThreadHead
#pragma weak PyLong_FromUnsignedLongLong
#pragma weak PyMethod_Type
#pragma weak PyModule_GetName
#pragma weak PyModule_Type
#pragma weak PyObject_Call
#pragma weak PyObject_CallFunctionObjArgs
#pragma weak PyObject_CallOneArg
#pragma weak PyObject_Free
#pragma weak PyObject_GetAttrString
#pragma weak PyObject_Repr
#pragma weak PyObject_SetAttrString
#pragma weak PySys_AddAuditHook
#pragma weak PySys_GetObject
#pragma weak PyThreadState_Get
#pragma weak PyThreadState_GetInterpreter
#pragma weak PyThreadState_Next
#pragma weak PyThread_get_thread_ident
#pragma weak PyTuple_New
#pragma weak PyType_IsSubtype
#pragma weak PyType_Ready
#pragma weak PyUnicode_AsUTF8
#pragma weak PyUnicode_AsUTF8AndSize
#pragma weak PyUnicode_FromString
#pragma weak Py_GetVersion
#pragma weak Py_IsInitialized
#pragma weak _PyArg_ParseTuple_SizeT
#pragma weak _PyCode_SetExtra
#pragma weak _PyErr_WriteUnraisableMsg
#pragma weak _PyEval_RequestCodeExtraIndex
#pragma weak _PyEval_SetProfile
#pragma weak _PyOS_IsMainThread
#pragma weak _PyObject_CallMethod_SizeT
#pragma weak _PyObject_New
#pragma weak _PyRuntime
#pragma weak _Py_BuildValue_SizeT
#pragma weak _Py_Dealloc
#pragma weak _Py_NoneStruct
#pragma weak Py_AddPendingCall
#pragma weak PyUnicode_Type
#pragma weak PyCode_Type
#pragma weak PyCode_Addr2Line
#pragma weak PyGILState_Ensure
#pragma weak _PyThreadState_UncheckedGet
#pragma weak PyMem_GetAllocator
#pragma weak PyMem_SetAllocator
#pragma weak PyGILState_GetThisThreadState
#pragma weak PyDict_GetItemString
#pragma weak PyLong_AsLongLong
#pragma weak PyList_Append
#pragma weak PyUnicode_CompareWithASCIIString
#pragma weak PyCFunction_NewEx
#pragma weak PyList_SetSlice
#pragma weak PyObject_GC_UnTrack
#endif
